"""The code digest of runs and studies (training/digest.py): it covers what a run computes, and
nothing else, so plumbing can change without retraining anything."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from seqbench.training import digest

# Files a run's closure reaches but which change no number: messages and atomic writes.
PLUMBING_IN_CLOSURE = {"__init__.py", "errors.py", "io.py", "redact.py"}
# Files that orchestrate, schedule, check or render: editing them must retrain nothing.
PLUMBING = [
    "cli.py",
    "config.py",
    "locks.py",
    "paths.py",
    "io.py",
    "errors.py",
    "redact.py",
    "sources.py",
    "orchestration/dvc.py",
    "orchestration/stage_deps.py",
    "orchestration/prefect.py",
    "stages/report/figures.py",
    "stages/train.py",
    "stages/search.py",
    "stages/prepare.py",
    "training/runs.py",
]


def relative(files) -> set[str]:
    return {path.relative_to(digest.PACKAGE_DIR).as_posix() for path in files}


def test_run_code_is_the_training_closure_of_one_kind_inside_the_boundary():
    files = [path.relative_to(digest.PACKAGE_DIR).as_posix() for path in digest.run_code_files("stock")]
    assert files == sorted(files)
    assert {
        "training/fit.py",
        "training/trials.py",
        "batching.py",
        "kinds/stock.py",
        "models/base.py",
        "models/forecaster.py",
        "models/fused_gru.py",
        "models/fused_gru.cpp",  # the GRU's C++ kernel computes as much as any module
        "metrics.py",
        "stats.py",
    } <= set(files)
    assert all(path.startswith(digest.COMPUTES) for path in files)
    assert not {
        "kinds/text.py",
        "kinds/video.py",
        "stages/evaluate.py",
        "stages/report/__init__.py",
        "cli.py",
        "config.py",
        "locks.py",
        "paths.py",
        "training/runs.py",
    } & set(files)


@pytest.mark.parametrize("kind", ["stock", "text", "video"])
def test_the_closure_outside_the_boundary_is_known_plumbing(kind):
    """A new import that pulls orchestration or a stage into training shows up here: it would
    either leak into every run's digest or, cut off by the boundary, go unnoticed."""
    closure = relative(digest.closure(digest.module_file(digest.RUN_MODULE), kind))
    outside = {path for path in closure if not path.startswith(digest.COMPUTES)}
    assert outside <= PLUMBING_IN_CLOSURE | {"sources.py"}, outside - PLUMBING_IN_CLOSURE


@pytest.fixture
def package_copy(tmp_path, monkeypatch) -> Path:
    """A copy of the package that digest.py reads instead of the real one."""
    copy_dir = tmp_path / "src" / "seqbench"
    shutil.copytree(digest.PACKAGE_DIR, copy_dir, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(digest, "PACKAGE_DIR", copy_dir)
    monkeypatch.setattr(digest, "ROOT", tmp_path)
    return copy_dir


def append(path: Path, line: str) -> None:
    with open(path, "a", encoding="utf-8") as file:
        file.write(f"\n{line}\n")


def test_code_digest_changes_with_the_code_a_run_executes_only(package_copy):
    before = digest.code_sha256("stock")
    assert digest.code_sha256("stock") == before  # deterministic
    append(package_copy / "kinds" / "text.py", "# another kind's edit")
    for path in PLUMBING:
        append(package_copy / path, "# plumbing edited")
    assert digest.code_sha256("stock") == before
    append(package_copy / "models" / "base.py", "# a changed model")
    assert digest.code_sha256("stock") != before


def test_code_digest_does_not_depend_on_where_the_project_lives(package_copy):
    copied = digest.code_sha256("text")
    real_dir = Path(digest.__file__).resolve().parents[1]
    assert package_copy != real_dir
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(digest, "PACKAGE_DIR", real_dir)
        assert digest.code_sha256("text") == copied


def train_with(src: Path, params: Path) -> subprocess.CompletedProcess:
    """Train ('toy', 'gru', seed 0) with the seqbench package under `src`, in a new process."""
    code = "import sys; from seqbench.training.runs import train_run; train_run('toy', 'gru', 0, sys.argv[1])"
    env = {**os.environ, "PYTHONPATH": str(src)}
    process = subprocess.run(
        [sys.executable, "-c", code, str(params)], env=env, capture_output=True, text=True, timeout=600
    )
    assert process.returncode == 0, process.stderr[-3000:]
    return process


def test_editing_plumbing_retrains_nothing_and_editing_a_model_retrains(prepared_stock, tmp_path):
    src = tmp_path / "copy" / "src"
    shutil.copytree(digest.PACKAGE_DIR, src / "seqbench", ignore=shutil.ignore_patterns("__pycache__"))
    params = prepared_stock.root / "params.yaml"
    metrics = prepared_stock.root / "models/toy/runs/gru/seed0/metrics.json"

    first = train_with(src, params)
    assert "training started" in first.stderr
    config = metrics.with_name("config.json")
    digest_before = json.loads(config.read_text())["code_sha256"]
    trained = metrics.stat().st_mtime_ns

    for path in PLUMBING:
        append(src / "seqbench" / path, "# plumbing edited")
    again = train_with(src, params)
    assert "training started" not in again.stderr, "a plumbing edit retrained the run"
    assert metrics.stat().st_mtime_ns == trained

    append(src / "seqbench" / "models" / "base.py", "# a changed model")
    edited = train_with(src, params)
    assert "training started" in edited.stderr, "a model edit did not retrain the run"
    assert metrics.stat().st_mtime_ns != trained
    assert json.loads(config.read_text())["code_sha256"] != digest_before
