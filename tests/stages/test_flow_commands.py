"""`seqbench run`, `search` and `train`: the flow scripts `make run` and dvc.yaml run, as commands;
and `make run DATASETS=...`."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from helpers import STOCK, assert_clean_failure

REPO = Path(__file__).resolve().parents[2]


def seqbench(*args: str, timeout: int = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "seqbench", *args], capture_output=True, text=True, timeout=timeout)


@pytest.fixture
def calls(monkeypatch) -> list:
    """The (flow, arguments) each command would run, recorded instead of run."""
    from seqbench import cli

    recorded = []
    monkeypatch.setattr(cli, "run_flow", lambda name, args: recorded.append((name, args)))
    return recorded


@pytest.mark.parametrize(
    "args, expected",
    [
        ([], ["--params", "p.yaml"]),
        (["--datasets", "a", "b"], ["--params", "p.yaml", "--datasets", "a", "b"]),
        (
            ["-d", "a", "--datasets", "b", "--pull", "--no-push"],
            ["--params", "p.yaml", "--datasets", "a", "b", "--pull", "--no-push"],
        ),
        (["--no-pull", "--push", "--datasets", "a"], ["--params", "p.yaml", "--datasets", "a", "--no-pull", "--push"]),
    ],
)
def test_run_passes_its_options_to_the_pipeline_flow(calls, args, expected):
    from typer.testing import CliRunner

    from seqbench.cli import app

    result = CliRunner().invoke(app, ["run", *args, "--params", "p.yaml"])
    assert result.exit_code == 0, result.output
    assert calls == [("pipeline", expected)]


def test_run_wants_datasets_named_with_the_option(calls):
    from typer.testing import CliRunner

    from seqbench.cli import app

    result = CliRunner().invoke(app, ["run", "text", "video"])
    assert_clean_failure(result, "unexpected argument(s) text video; to choose datasets: --datasets text video")
    assert calls == []


@pytest.mark.parametrize("command", ["search", "train"])
def test_search_and_train_run_their_flow_with_the_dataset(calls, command):
    from typer.testing import CliRunner

    from seqbench.cli import app

    result = CliRunner().invoke(app, [command, "toy", "--params", "p.yaml"])
    assert result.exit_code == 0, result.output
    assert calls == [(command, ["toy", "--params", "p.yaml"])]


def test_run_names_unknown_datasets_before_anything_runs(tmp_path, monkeypatch, capfd):
    """`seqbench run --datasets` reaches flows/pipeline.py with every name: the unknown ones are
    named, the declared ones listed, exit 1, no traceback, and no Prefect server was started. The
    pipeline runs only params files inside its own project, so the project here is a copy of its
    script beside a tiny params.yaml (nothing of the real project is touched)."""
    from typer.testing import CliRunner

    from seqbench import cli

    (tmp_path / "flows").mkdir()
    shutil.copy(REPO / "flows" / "pipeline.py", tmp_path / "flows" / "pipeline.py")
    (tmp_path / "params.yaml").write_text(
        yaml.safe_dump({"datasets": {"prices": STOCK, "other": STOCK}}, sort_keys=False)
    )
    monkeypatch.setattr(cli, "PROJECT", tmp_path)
    monkeypatch.setenv("PREFECT_HOME", str(tmp_path / "prefect-home"))
    result = CliRunner().invoke(
        cli.app, ["run", "--datasets", "nope", "prices", "gone", "--params", str(tmp_path / "params.yaml")]
    )
    stderr = capfd.readouterr().err  # the flow's own process writes to this process's stderr
    assert result.exit_code == 1, stderr
    assert "error: unknown dataset(s) nope, gone; params.yaml declares: prices, other" in stderr
    assert "Traceback" not in stderr
    assert not list((tmp_path / "prefect-home").glob("*.db")), "a Prefect server started"


@pytest.mark.parametrize("command", ["search", "train"])
def test_search_and_train_name_an_unknown_dataset(project, command):
    """The flow script's own check answers (run_dataset_flow), through its process's exit code."""
    project.params({"prices": STOCK})
    process = seqbench(command, "nope", "--params", str(project.root / "params.yaml"))
    assert process.returncode == 1, process.stderr
    assert "error: unknown dataset 'nope'; params.yaml declares: prices" in process.stderr
    assert "Traceback" not in process.stderr


def make_run_line(*variables: str) -> str:
    """The command `make run` would run, with the given make variables (make -n: nothing runs)."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("MAKE")}
    process = subprocess.run(
        ["make", "-n", "run", *variables], cwd=REPO, capture_output=True, text=True, timeout=60, env=env
    )
    assert process.returncode == 0, process.stderr
    return next(line for line in process.stdout.splitlines() if "flows/pipeline.py" in line)


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
def test_make_run_passes_datasets_to_the_pipeline():
    assert make_run_line("DATASETS=a b").endswith("flows/pipeline.py --datasets a b")
    assert make_run_line().endswith("flows/pipeline.py")
    assert make_run_line("DATASETS=").endswith("flows/pipeline.py")
