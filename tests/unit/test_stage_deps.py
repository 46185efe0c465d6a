"""dvc.yaml's code deps against the import closure of each stage (orchestration/stage_deps.py)."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from seqbench.orchestration import stage_deps as stages
from seqbench.training import digest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def pipeline() -> dict:
    return yaml.safe_load((REPO / "dvc.yaml").read_text(encoding="utf-8"))


def body(pipeline: dict, stage: str) -> dict:
    return pipeline["stages"][stage].get("do", pipeline["stages"][stage])


def test_every_stage_depends_on_all_the_code_it_runs(pipeline):
    problems = stages.missing_deps(pipeline)
    assert problems == [], "dvc.yaml deps are incomplete:\n" + "\n".join(problems)


def test_a_removed_dep_is_reported_with_its_stage_and_file(pipeline):
    broken = copy.deepcopy(pipeline)
    body(broken, "evaluate")["deps"].remove("src/seqbench/training")
    problems = stages.missing_deps(broken)
    # evaluate runs training/predict.py and training/cost.py (and what they import); every file
    # of training/ it runs is named, with its stage, for every kind
    assert problems and all(p.startswith("evaluate: runs src/seqbench/training/") for p in problems)
    assert all(p.endswith("but its deps miss it (for stock, text, video datasets)") for p in problems)
    named = {p.split()[2] for p in problems}
    assert {"src/seqbench/training/cost.py", "src/seqbench/training/predict.py"} <= named


def test_a_missing_kind_module_is_reported_for_that_kind(pipeline):
    broken = copy.deepcopy(pipeline)
    body(broken, "prepare")["deps"].remove("src/seqbench/kinds/classify.py")
    assert stages.missing_deps(broken) == [
        "prepare: runs src/seqbench/kinds/classify.py but its deps miss it (for text, video datasets)"
    ]


def test_a_dep_that_does_not_exist_and_an_undeclared_stage_are_reported(pipeline):
    broken = copy.deepcopy(pipeline)
    body(broken, "train")["deps"].append("src/seqbench/gone.py")
    broken["stages"]["extra"] = {"cmd": "seqbench extra"}
    problems = stages.missing_deps(broken)
    assert "extra: a stage without an entry in seqbench/orchestration/stage_deps.py STAGES" in problems
    assert "train: src/seqbench/gone.py is a dep but does not exist (for stock, text, video datasets)" in problems


def test_a_folder_dep_covers_the_files_inside_it(pipeline):
    broken = copy.deepcopy(pipeline)
    deps = body(broken, "report")["deps"]
    deps.remove("src/seqbench/stages/report")
    assert any("runs src/seqbench/stages/report/sections.py" in p for p in stages.missing_deps(broken))


def test_closure_follows_imports_inside_functions_but_not_other_cli_commands():
    files = set(stages.relative_to_root(stages.stage_closure("evaluate", "stock")))
    # evaluate.py imports predict.py and stats.py inside its functions
    assert {
        "src/seqbench/cli.py",
        "src/seqbench/stages/evaluate.py",
        "src/seqbench/training/predict.py",
        "src/seqbench/stats.py",
        "src/seqbench/models/forecaster.py",
    } <= files
    # cli.py imports every stage inside its command; `seqbench evaluate` runs none of the others
    assert not files & {
        "src/seqbench/stages/ingest.py",
        "src/seqbench/stages/validate.py",
        "src/seqbench/stages/report/__init__.py",
    }


def test_a_per_dataset_closure_holds_its_own_kind_only():
    stock = set(stages.relative_to_root(stages.stage_closure("prepare", "stock")))
    text = set(stages.relative_to_root(stages.stage_closure("prepare", "text")))
    assert "src/seqbench/kinds/stock.py" in stock and "src/seqbench/kinds/text.py" not in stock
    assert {"src/seqbench/kinds/text.py", "src/seqbench/kinds/classify.py"} <= text
    assert "src/seqbench/kinds/classify.py" not in stock  # only the classification kinds import it
    report = set(stages.relative_to_root(stages.stage_closure("report")))
    assert {f"src/seqbench/kinds/{kind}.py" for kind in digest.kind_names()} <= report


def test_relative_and_submodule_imports_resolve(tmp_path, monkeypatch):
    package = tmp_path / "src" / "seqbench"
    (package / "sub").mkdir(parents=True)
    for name, text in {
        "__init__.py": "",
        "main.py": "def f():\n    from .sub import leaf\n    import seqbench.other\n",
        "other.py": "from seqbench import helper as h\n",
        "helper.py": "",
        "sub/__init__.py": "",
        "sub/leaf.py": "from ..helper import x\n",
        "unused.py": "",
    }.items():
        (package / name).write_text(text)
    monkeypatch.setattr(digest, "PACKAGE_DIR", package)
    monkeypatch.setattr(digest, "ROOT", tmp_path)
    monkeypatch.setattr(digest, "kind_names", lambda: [])
    found = stages.relative_to_root(digest.closure(package / "main.py"))
    assert found == [
        f"src/seqbench/{name}"
        for name in ("__init__.py", "helper.py", "main.py", "other.py", "sub/__init__.py", "sub/leaf.py")
    ]
