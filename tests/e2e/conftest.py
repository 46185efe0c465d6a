"""A session's headless Chromium for the report and page tests."""

from __future__ import annotations

import pytest

from chromium import start_chromium


@pytest.fixture(scope="session")
def browser():
    driver = start_chromium()
    yield driver
    driver.quit()
