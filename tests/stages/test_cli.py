"""The command line: help texts, fast start-up, and the datasets listing."""

import json
import subprocess
import sys

import pytest

from helpers import STOCK, stock_frame


@pytest.mark.parametrize("command", [[], ["ingest"], ["validate"], ["datasets"]])
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
        'for args in (["--help"], ["ingest", "--help"], ["validate", "--help"]):\n'
        "    assert CliRunner().invoke(app, args).exit_code == 0\n"
        "heavy = ['torch', 'great_expectations', 'prefect', 'pandas', 'lightning', 'aeon']\n"
        "print(sorted(m for m in heavy if m in sys.modules))\n"
    )
    process = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert process.returncode == 0, process.stderr
    assert process.stdout.strip() == "[]"


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
