"""dvc.yaml's code deps against the import closure of each stage (seqbench/stages.py), and the
code digest that training and search derive from the same closure."""

from __future__ import annotations

import copy
import shutil
from pathlib import Path

import pytest
import yaml

from seqbench import stages

REPO = Path(__file__).resolve().parents[1]


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
    body(broken, "evaluate")["deps"].remove("src/seqbench/cost.py")
    assert stages.missing_deps(broken) == [
        "evaluate: runs src/seqbench/cost.py but its deps miss it (for stock, text, video datasets)"]


def test_a_missing_kind_module_is_reported_for_that_kind(pipeline):
    broken = copy.deepcopy(pipeline)
    body(broken, "prepare")["deps"].remove("src/seqbench/kinds/classify.py")
    assert stages.missing_deps(broken) == [
        "prepare: runs src/seqbench/kinds/classify.py but its deps miss it (for text, video datasets)"]


def test_a_dep_that_does_not_exist_and_an_undeclared_stage_are_reported(pipeline):
    broken = copy.deepcopy(pipeline)
    body(broken, "train")["deps"].append("src/seqbench/gone.py")
    broken["stages"]["extra"] = {"cmd": "seqbench extra"}
    problems = stages.missing_deps(broken)
    assert "extra: a stage without an entry in seqbench/stages.py STAGES" in problems
    assert "train: src/seqbench/gone.py is a dep but does not exist (for stock, text, video datasets)" in problems


def test_a_folder_dep_covers_the_files_inside_it(pipeline):
    broken = copy.deepcopy(pipeline)
    deps = body(broken, "report")["deps"]
    deps.remove("src/seqbench/report")
    assert any("runs src/seqbench/report/sections.py" in p for p in stages.missing_deps(broken))


def test_closure_follows_imports_inside_functions_but_not_other_cli_commands():
    files = set(stages.relative_to_root(stages.stage_closure("evaluate", "stock")))
    # evaluate.py imports predict.py and stats.py inside its functions
    assert {"src/seqbench/cli.py", "src/seqbench/evaluate.py", "src/seqbench/predict.py",
            "src/seqbench/stats.py", "src/seqbench/models/forecaster.py"} <= files
    # cli.py imports every stage inside its command; `seqbench evaluate` runs none of the others
    assert not files & {"src/seqbench/ingest.py", "src/seqbench/validate.py", "src/seqbench/report/__init__.py"}


def test_a_per_dataset_closure_holds_its_own_kind_only():
    stock = set(stages.relative_to_root(stages.stage_closure("prepare", "stock")))
    text = set(stages.relative_to_root(stages.stage_closure("prepare", "text")))
    assert "src/seqbench/kinds/stock.py" in stock and "src/seqbench/kinds/text.py" not in stock
    assert {"src/seqbench/kinds/text.py", "src/seqbench/kinds/classify.py"} <= text
    assert "src/seqbench/kinds/classify.py" not in stock  # only the classification kinds import it
    report = set(stages.relative_to_root(stages.stage_closure("report")))
    assert {f"src/seqbench/kinds/{kind}.py" for kind in stages.kind_names()} <= report


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
    monkeypatch.setattr(stages, "PACKAGE_DIR", package)
    monkeypatch.setattr(stages, "ROOT", tmp_path)
    monkeypatch.setattr(stages, "kind_names", lambda: [])
    found = stages.relative_to_root(stages.closure(package / "main.py"))
    assert found == [f"src/seqbench/{name}" for name in
                     ("__init__.py", "helper.py", "main.py", "other.py", "sub/__init__.py", "sub/leaf.py")]


# ---- the code digest of runs and studies --------------------------------------------------------

@pytest.fixture
def package_copy(tmp_path, monkeypatch) -> Path:
    """A copy of the package that stages.py reads instead of the real one."""
    copy_dir = tmp_path / "src" / "seqbench"
    shutil.copytree(stages.PACKAGE_DIR, copy_dir, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(stages, "PACKAGE_DIR", copy_dir)
    monkeypatch.setattr(stages, "ROOT", tmp_path)
    return copy_dir


def test_run_code_is_the_training_closure_of_one_kind():
    files = [path.relative_to(stages.PACKAGE_DIR).as_posix() for path in stages.run_code_files("stock")]
    assert files == sorted(files)
    assert {"train.py", "search.py", "data.py", "prepare.py", "kinds/stock.py", "models/base.py"} <= set(files)
    assert not {"kinds/text.py", "kinds/video.py", "evaluate.py", "report/__init__.py", "cli.py"} & set(files)


def test_code_digest_changes_with_the_code_a_run_executes_only(package_copy):
    before = stages.code_sha256("stock")
    assert stages.code_sha256("stock") == before  # deterministic
    (package_copy / "kinds" / "text.py").write_text("# another kind's edit\n", encoding="utf-8")
    (package_copy / "report" / "figures.py").write_text("# not training code\n", encoding="utf-8")
    assert stages.code_sha256("stock") == before
    with open(package_copy / "models" / "base.py", "a", encoding="utf-8") as file:
        file.write("# a changed model\n")
    assert stages.code_sha256("stock") != before


def test_code_digest_does_not_depend_on_where_the_project_lives(package_copy):
    copied = stages.code_sha256("text")
    real_dir = Path(stages.__file__).resolve().parent
    assert package_copy != real_dir
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(stages, "PACKAGE_DIR", real_dir)
        assert stages.code_sha256("text") == copied
