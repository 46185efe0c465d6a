"""Suite workspaces: `suites/<name>/params.yaml` plus the dvc.yaml this module writes beside it.

Why a workspace of its own rather than more stages in the project's dvc.yaml: DVC takes a
pipeline's datasets from the params.yaml beside its dvc.yaml (`foreach: ${datasets}`), and the
report stage depends on every evaluation (reports/eval). Suite datasets declared in the project's
params.yaml would therefore train in every `make run` and every plain `dvc repro`.

A folder with its own params.yaml is its own project root for seqbench (data/, models/, reports/
under it: Paths) and its own DVC project: a DVC subrepo (`dvc init --subdir`, its own .dvc/ and
cache), which the project root's `dvc status` and `dvc repro` skip, so a suite never shows up as
"changed" after `make run`. `make suite` runs it with the usual pipeline flow
(`flows/pipeline.py --params suites/<name>/params.yaml`). Its dvc.yaml is the project's, so its
datasets go through the same stages, with:

- code paths (src/, flows/) rebased onto the project root (`../../src/...`);
- `suites` among the params of every stage that reads `train` (a suite shares a budget);
- a `suite@<name>` stage per suite after the evaluations, and the report depending on its output;
- no dep on reports/setups (the project's hand-kept record of set-ups tried on its datasets).

The file is generated, so it cannot drift from the project's pipeline: `make suite` writes it
again before every run.
"""

from __future__ import annotations

import os
from pathlib import Path

from seqbench.errors import SeqbenchError
from seqbench.orchestration.stage_deps import CODE_DIRS, relative_to_root, stage_closure

HEADER = """\
# The pipeline of this suite workspace, written by `seqbench suite-pipeline {params}` (`make suite`
# runs it) from the project's dvc.yaml: edit that one, not this. See src/seqbench/orchestration/workspace.py.
"""
PROJECT_ONLY_DEPS = ("reports/setups",)


def write_suite_pipeline(params_path: Path | str) -> Path:
    """Write dvc.yaml beside `params_path` (a suite workspace's params file); return its path."""
    import yaml

    from seqbench.config import load_params
    from seqbench.io import atomic_path

    params_path = Path(params_path)
    params = load_params(params_path)
    if not params.suites:
        raise SeqbenchError(
            f"{params_path}: declares no `suites:`; a suite workspace's params file declares "
            "its datasets and at least one suite of them"
        )
    workspace = params_path.resolve().parent
    root = project_root(workspace)
    make_subrepo(workspace, root)
    pipeline = suite_pipeline(
        yaml.safe_load((root / "dvc.yaml").read_text(encoding="utf-8")),
        Path(os.path.relpath(root, workspace)).as_posix(),
    )
    shown = Path(os.path.relpath(params_path.resolve(), root)).as_posix()
    text = HEADER.format(params=shown) + yaml.safe_dump(pipeline, sort_keys=False, width=120)
    target = workspace / "dvc.yaml"
    with atomic_path(target) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return target


def make_subrepo(workspace: Path, root: Path) -> None:
    """Make the workspace a DVC subrepo once, and give it the project's .dvcignore (a subrepo
    reads its own: the run folders' times stay out of its hashes too, timings.py)."""
    from dvc.repo import Repo

    from seqbench.io import atomic_path

    if not (workspace / ".dvc").is_dir():
        with Repo.init(str(workspace), subdir=True) as repo, repo.config.edit() as config:
            config["core"]["analytics"] = False  # as the project's own .dvc/config
    ignore = root / ".dvcignore"
    if ignore.is_file():
        with atomic_path(workspace / ".dvcignore") as tmp:
            tmp.write_text(ignore.read_text(encoding="utf-8"), encoding="utf-8")


def project_root(workspace: Path) -> Path:
    """The DVC project above the workspace: the nearest parent with dvc.yaml and .dvc/."""
    for folder in workspace.parents:
        if (folder / "dvc.yaml").is_file() and (folder / ".dvc").is_dir():
            return folder
    raise SeqbenchError(f"{workspace}: not inside a seqbench DVC project (no parent folder holds dvc.yaml and .dvc/)")


def suite_pipeline(project: dict, prefix: str) -> dict:
    """The project's pipeline (parsed dvc.yaml) as a suite workspace `prefix` below it runs it."""
    stages = {}
    for name, stage in project["stages"].items():
        body = dict(stage.get("do", stage))
        body["cmd"] = " ".join(rebase(word, prefix) for word in body["cmd"].split(" "))
        body["deps"] = [rebase(dep, prefix) for dep in body.get("deps", []) if dep not in PROJECT_ONLY_DEPS]
        if "train" in body.get("params", []):
            body["params"] = [*body["params"], "suites"]
        if name == "report":
            body["deps"].insert(0, "reports/suite")
        stages[name] = {**stage, "do": body} if "do" in stage else body
    stages["suite"] = suite_stage(prefix)
    return {**project, "stages": stages}


def rebase(path: str, prefix: str) -> str:
    """A project code path as seen from the workspace; anything else as it is."""
    return f"{prefix}/{path}" if path.startswith(CODE_DIRS) else path


def suite_stage(prefix: str) -> dict:
    """`suite@<name>`: its code deps are its import closure (stage_deps.py), so none is forgotten."""
    code = [rebase(path, prefix) for path in relative_to_root(stage_closure("suite"))]
    return {
        "foreach": "${suites}",
        "do": {
            "cmd": "seqbench suite ${key}",
            "params": ["suites.${key}", "verdict"],  # the suite's ROPE
            "deps": ["reports/eval", *code],  # every evaluation: DVC runs the datasets' stages first
            "outs": [{"reports/suite/${key}.json": {"cache": False}}],
        },
    }
