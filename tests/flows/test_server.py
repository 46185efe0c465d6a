"""`make server` as the README documents it: the port chosen is the one the UI's API calls go to."""

import json
import os
import subprocess
import time
import urllib.request

from processes import REPO, free_port, stop_process_group


def ui_settings(port: int, deadline: float) -> dict:
    """What the UI asks the server for first (/ui-settings), once the server answers."""
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/ui-settings", timeout=5) as response:
                return json.loads(response.read())
        except OSError:
            assert time.monotonic() < deadline, "the server never answered"
            time.sleep(0.5)


def test_make_server_points_its_ui_at_the_port_it_serves(tmp_path):
    port = free_port()
    env = {**os.environ, "PREFECT_HOME": str(tmp_path / "prefect-home")}
    env.pop("PREFECT_API_URL", None)
    env.pop("PREFECT_UI_API_URL", None)
    with open(tmp_path / "server.log", "w") as log:
        # -o install: the venv is this one, already installed (make test installs it first).
        server = subprocess.Popen(
            ["make", "-o", "install", "server", f"PREFECT_PORT={port}"],
            cwd=REPO,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            settings = ui_settings(port, time.monotonic() + 90)
        finally:
            stop_process_group(server)
    # Not the default port 4200: the UI would show "Unable to connect".
    assert settings["api_url"] == f"http://127.0.0.1:{port}/api", (tmp_path / "server.log").read_text()[-3000:]


def test_make_server_on_every_interface_gives_the_ui_a_reachable_name():
    shown = subprocess.run(
        ["make", "-n", "-o", "install", "server", "HOST=0.0.0.0", "PREFECT_PORT=4300"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "--host 0.0.0.0 --port 4300" in shown and "PREFECT_SERVER_API_PORT=4300" in shown
    ui_url = next(word for word in shown.split() if word.startswith("PREFECT_UI_API_URL="))
    assert "0.0.0.0" not in ui_url and ui_url.endswith(":4300/api")  # a browser cannot call 0.0.0.0
