"""The command line: help texts, the version, fast start-up, and the datasets listing."""

import json
import subprocess
import sys

import pytest

from helpers import STOCK, stock_frame


@pytest.mark.parametrize(
    "command", [[], ["run"], ["ingest"], ["validate"], ["prepare"], ["search"], ["train"], ["datasets"]]
)
def test_every_command_has_help(command):
    process = subprocess.run(
        [sys.executable, "-m", "seqbench", *command, "--help"], capture_output=True, text=True, timeout=60
    )
    assert process.returncode == 0, process.stderr
    assert "Usage:" in process.stdout
    assert "--params" in process.stdout or not command


def test_help_does_not_import_heavy_libraries():
    code = (
        "import sys\n"
        "from typer.testing import CliRunner\n"
        "from seqbench.cli import app\n"
        'for args in (["--help"], ["--version"], ["ingest", "--help"], ["validate", "--help"],\n'
        '             ["run", "--help"], ["search", "--help"], ["train", "--help"]):\n'
        "    assert CliRunner().invoke(app, args).exit_code == 0\n"
        "heavy = ['torch', 'great_expectations', 'prefect', 'pandas', 'lightning', 'aeon']\n"
        "print(sorted(m for m in heavy if m in sys.modules))\n"
    )
    process = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert process.returncode == 0, process.stderr
    assert process.stdout.strip() == "[]"


def test_version_prints_the_installed_version():
    from importlib.metadata import version

    process = subprocess.run(
        [sys.executable, "-m", "seqbench", "--version"], capture_output=True, text=True, timeout=60
    )
    assert process.returncode == 0, process.stderr
    assert process.stdout.strip() == f"seqbench {version('seqbench')}"


def test_datasets_lists_each_dataset_and_its_progress(project):
    project.write("prices.csv", stock_frame(8))
    project.params({"prices": STOCK, "other": {**STOCK, "source": "elsewhere.csv"}})
    assert project.run("ingest", "prices").exit_code == 0
    assert project.run("validate", "prices").exit_code == 0
    listing = project.run("datasets")
    assert listing.exit_code == 0, listing.output
    lines = {line.split()[1]: line for line in listing.output.splitlines() if "│" in line and "stock" in line}
    assert "8 rows" in lines["prices"] and "ok: 8 rows, 0 quarantined" in lines["prices"]
    assert "not ingested" in lines["other"] and "not validated" in lines["other"]
    report = json.loads((project.root / "reports/validation/prices.json").read_text())
    assert report["rows_validated"] == 8


def test_unknown_dataset_is_a_clear_error(project):
    project.params({"prices": STOCK})
    result = project.run("ingest", "nope")
    assert result.exit_code == 1
    assert "unknown dataset 'nope'; params.yaml declares: prices" in result.output


def test_brackets_in_data_print_as_they_are(project):
    """Messages quote column names, sources and paths: Rich markup in them must not be read as
    markup (a `[/quote]` used to end in a MarkupError traceback, `[bold]` vanished)."""
    import pandas as pd

    from helpers import TEXT

    project.write("reviews.csv", pd.DataFrame({"note [/quote]": ["a"], "Review [bold]": ["b"], "score": ["great"]}))
    project.write("prices[bold].csv", stock_frame(8))
    project.params({"reviews": TEXT, "prices": {**STOCK, "source": "prices[bold].csv"}})
    result = project.run("ingest", "reviews")
    assert result.exit_code == 1
    assert "note [/quote]" in result.output and "Review [bold]" in result.output, result.output
    assert "Traceback" not in result.output
    assert project.run("ingest", "prices").exit_code == 0
    listing = project.run("datasets")
    assert listing.exit_code == 0 and "prices[bold].csv" in listing.output, listing.output


def test_terminal_escapes_in_a_csv_header_print_escaped(project):
    """A column name holding ESC ]0;...BEL (set the terminal's title) and ESC [2J (clear the
    screen) reaches the error message; the bytes on stderr hold neither control character."""
    header = "date,\x1b]0;pwned\x07note,\x1b[2Jclose,volume\n"
    project.write("prices.csv", header + "2020-01-01,a,1.0,5\n")
    project.params({"prices": STOCK})
    process = subprocess.run(
        [sys.executable, "-m", "seqbench", "ingest", "prices", "--params", str(project.root / "params.yaml")],
        capture_output=True,
        timeout=120,
    )
    assert process.returncode == 1
    stderr = process.stderr
    assert b"\x1b" not in stderr and b"\x07" not in stderr, stderr
    assert b"\\x1b]0;pwned\\x07note" in stderr and b"\\x1b[2Jclose" in stderr, stderr
    assert b"Traceback" not in stderr


def test_every_control_character_but_tab_and_newline_is_escaped():
    from seqbench.redact import shown

    text = "".join(chr(c) for c in range(0x00, 0xA0))
    printed = shown(text)
    assert not any(ord(c) < 0x20 and c not in "\t\n" or 0x7F <= ord(c) < 0xA0 for c in printed)
    assert "\\x1b" in printed and "\\x0d" in printed and "\\x9b" in printed and "\t" in printed and "\n" in printed
