"""The code each DVC stage runs: its entry point and that entry's import closure in the project.

DVC reruns a stage only when a path in its `deps:` changes, so dvc.yaml must name every project
file the stage's command imports; a forgotten one leaves results stale without any sign. DVC
needs the paths literally, so dvc.yaml still lists them, and tests check that list against the
closures computed here (training/digest.py's `closure`, read from the source with `ast`).

`seqbench X` runs cli.py's module level and the command function `X`; cli.py imports each stage's
module inside its command, so the other commands' bodies are skipped. A per-dataset stage keeps
only its own dataset's kind module (dvc.yaml names it as `src/seqbench/kinds/${item.kind}.py`).
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

from seqbench.training import digest


@dataclass(frozen=True)
class Stage:
    """A dvc.yaml stage's command, without its arguments: `seqbench X` or `python SCRIPT`."""

    command: str
    per_dataset: bool = True  # a `foreach` stage: one dataset, so one kind
    # Only in a suite workspace's pipeline (workspace.py writes it), not in the project's dvc.yaml.
    suite_only: bool = False

    @property
    def script(self) -> Path:
        """The file the command starts in."""
        program, target = self.command.split()
        return digest.PACKAGE_DIR / "cli.py" if program == "seqbench" else digest.ROOT / target

    @property
    def cli_command(self) -> str | None:
        """The `seqbench` subcommand (the cli.py function of that name), if any."""
        program, target = self.command.split()
        return target if program == "seqbench" else None


# Every stage of dvc.yaml, by name. tests/test_stage_deps.py checks that dvc.yaml's `cmd` of
# each stage starts with its command here and that its deps cover its closure.
STAGES = {
    "ingest": Stage("seqbench ingest"),
    "validate": Stage("seqbench validate"),
    "prepare": Stage("seqbench prepare"),
    "search": Stage("python flows/search.py"),
    "train": Stage("python flows/train.py"),
    "evaluate": Stage("seqbench evaluate"),
    "report": Stage("seqbench report", per_dataset=False),
    "suite": Stage("seqbench suite", per_dataset=False, suite_only=True),
}


def stage_closure(stage: str, kind: str | None = None) -> set[Path]:
    """The project files stage `stage` runs: for a per-dataset stage, those of a dataset of
    `kind` (None: every kind's)."""
    spec = STAGES[stage]
    other_commands = frozenset()
    if spec.cli_command:
        other_commands = frozenset(cli_commands()) - {spec.cli_command}
    return digest.closure(spec.script, kind if spec.per_dataset else None, other_commands)


def cli_commands() -> list[str]:
    """The names of cli.py's command functions (those decorated with `@app.command()`)."""
    tree = ast.parse((digest.PACKAGE_DIR / "cli.py").read_text(encoding="utf-8"))
    return [
        node.name
        for node in tree.body
        if isinstance(node, ast.FunctionDef)
        and any("command" in ast.unparse(decorator) for decorator in node.decorator_list)
    ]


def relative_to_root(files: set[Path]) -> list[str]:
    """Paths as dvc.yaml writes them (src/seqbench/train.py), sorted."""
    return sorted(path.relative_to(digest.ROOT).as_posix() for path in files)


CODE_DIRS = ("src/", "flows/")  # deps under these are code; the others are data and params


def missing_deps(pipeline: dict) -> list[str]:
    """What dvc.yaml (parsed, as a dict) gets wrong about its stages' code, one line each: a
    stage with no entry in STAGES or another command, a file of a stage's closure that no dep
    covers, a code dep that does not exist. Empty when all is well. Deps beyond the closure are
    allowed: a `foreach` stage names kinds/classify.py for every kind, as only some need it."""
    stages = pipeline.get("stages", {})
    problems = [
        f"{name}: a stage without an entry in seqbench/orchestration/stage_deps.py STAGES"
        for name in stages
        if name not in STAGES
    ]
    for name, spec in STAGES.items():
        if name not in stages:
            if spec.suite_only:
                continue
            problems.append(f"{name}: declared in seqbench/stages.py but not a stage of dvc.yaml")
            continue
        body = stages[name].get("do", stages[name])  # a `foreach` stage's body is under `do:`
        if not body.get("cmd", "").startswith(spec.command):
            problems.append(f"{name}: its cmd {body.get('cmd')!r} does not run {spec.command!r}")
        problems += stage_problems(name, body.get("deps", []))
    return problems


def stage_problems(name: str, deps: list[str]) -> list[str]:
    """The problems of one stage's deps, checked for a dataset of every kind (a `foreach`
    stage's deps name the kind as ${item.kind}), or once for a stage over all datasets."""
    found: dict[str, list[str]] = {}  # problem -> the kinds it shows for
    for kind in digest.kind_names() if STAGES[name].per_dataset else [None]:
        code_deps = [dep.replace("${item.kind}", kind or "") for dep in deps if dep.startswith(CODE_DIRS)]
        problems = [f"{dep} is a dep but does not exist" for dep in code_deps if not (digest.ROOT / dep).exists()]
        problems += [
            f"runs {path} but its deps miss it"
            for path in relative_to_root(stage_closure(name, kind))
            if not covers(code_deps, path)
        ]
        for problem in problems:
            found.setdefault(problem, []).append(kind)
    return [
        f"{name}: {problem}" + (f" (for {', '.join(kinds)} datasets)" if kinds != [None] else "")
        for problem, kinds in found.items()
    ]


def covers(deps: list[str], path: str) -> bool:
    """Is `path` one of `deps` or inside a folder among them?"""
    return any(path == dep or path.startswith(dep.rstrip("/") + "/") for dep in deps)
