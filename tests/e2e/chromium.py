"""The report and the validation pages in a real headless Chromium (Debian's chromium and
chromedriver), driven by Selenium."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from processes import REPO

ARTIFACTS = Path(os.environ.get("SEQBENCH_TEST_ARTIFACTS", REPO / "test-artifacts"))


def start_chromium(logs: dict | None = None):
    """Real headless Chromium (Debian's chromium and chromedriver) driven by Selenium, keeping the
    console log and whichever other logs `logs` asks for (e.g. {"performance": "ALL"})."""
    import shutil

    chromium, chromedriver = shutil.which("chromium"), shutil.which("chromedriver")
    if not (chromium and chromedriver):
        pytest.fail("the report tests need Debian's chromium and chromium-driver: run `make browser`")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--window-size=1280,900",
    ):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", **(logs or {})})
    return webdriver.Chrome(service=Service(chromedriver), options=options)


def open_report(driver, path: Path) -> None:
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get(path.resolve().as_uri())
    WebDriverWait(driver, 30).until(lambda d: d.execute_script("return document.readyState") == "complete")
    WebDriverWait(driver, 30).until(lambda d: d.find_elements("css selector", ".js-plotly-plot .main-svg"))


def check_in_browser(driver, path: Path, datasets: list[str], screenshot: str) -> None:
    """No console errors, every dataset section, rendered plots; a screenshot as an artefact."""
    open_report(driver, path)
    errors = [entry for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]
    assert errors == [], errors
    for name in datasets:
        assert driver.find_elements("css selector", f"section#{name}.dataset"), name
    plots = driver.find_elements("css selector", ".js-plotly-plot .main-svg")
    assert len(plots) >= len(datasets)
    traces = driver.execute_script("return document.querySelectorAll('.js-plotly-plot g.trace').length")
    assert traces > 0
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    height = driver.execute_script("return document.body.scrollHeight")
    driver.set_window_size(1280, min(height, 16000))
    assert driver.save_screenshot(str(ARTIFACTS / screenshot))
    driver.set_window_size(1280, 900)
