"""The code each DVC stage runs: its entry point and that entry's import closure in the project.

DVC reruns a stage only when a path in its `deps:` changes, so dvc.yaml must name every project
file the stage's command imports; a forgotten one leaves results stale without any sign. DVC
needs the paths literally, so dvc.yaml still lists them, and tests/test_stage_deps.py checks
that list against the closures computed here. Training and search hash the same kind of closure
(`code_sha256`) to decide whether a finished run or a study is still valid.

The closure is read from the source with `ast`, never by importing it, and covers every import
statement in a file, those inside functions too: the project imports heavy libraries (and some
of its own modules) inside the functions that need them. Only project code is followed:
`src/seqbench/**` and the flow scripts in `flows/`.

Two refinements keep the closure to what a stage really runs:

- `seqbench X` runs cli.py's module level and the command function `X`; cli.py imports each
  stage's module inside its command, so the other commands' bodies are skipped.
- Kinds: config.py imports the registry kinds/__init__.py, which imports every kind statically.
  A per-dataset stage only ever calls its own dataset's kind, so its closure keeps the registry
  and the dataset's kind module (with what that module imports, e.g. kinds/base.py and
  kinds/classify.py) and leaves out the other kinds' modules: editing text.py need not rerun a
  stock dataset's stages. dvc.yaml names the kind as `src/seqbench/kinds/${item.kind}.py`.
"""

from __future__ import annotations

import ast
import hashlib
from dataclasses import dataclass
from pathlib import Path

PACKAGE = "seqbench"
PACKAGE_DIR = Path(__file__).resolve().parent  # src/seqbench
ROOT = PACKAGE_DIR.parents[1]  # the project root (src/, flows/) of a checkout; the digest needs only the package

# What a training run (train.train_run) and a search trial (search.search_trial) compute is a
# function of this module's closure; train.py and search.py import each other, so it is one
# closure for both. The flow scripts and orchestration around them are left out on purpose: they
# schedule runs but do not change what a run computes, and including them would throw away
# every finished run whenever the orchestration is edited.
RUN_MODULE = "seqbench.train"


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
        return PACKAGE_DIR / "cli.py" if program == "seqbench" else ROOT / target

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
    "train": Stage("python flows/compare.py"),
    "evaluate": Stage("seqbench evaluate"),
    "report": Stage("seqbench report", per_dataset=False),
    "suite": Stage("seqbench suite", per_dataset=False, suite_only=True),
}


# ---- modules and files ------------------------------------------------------------------------

def module_file(module: str) -> Path | None:
    """The file of a project module (`seqbench.kinds` -> kinds/__init__.py), or None when it
    is not one (a class or function imported by name, or another package)."""
    parts = module.split(".")
    if parts[0] != PACKAGE:
        return None
    base = PACKAGE_DIR.joinpath(*parts[1:])
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def module_name(path: Path) -> str | None:
    """The dotted name of a file in the package; None for a script outside it (flows/)."""
    try:
        parts = list(path.relative_to(PACKAGE_DIR).with_suffix("").parts)
    except ValueError:
        return None
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join([PACKAGE, *parts])


def with_parents(module: str) -> list[str]:
    """Importing a.b.c runs a/__init__.py and a/b/__init__.py first: a, a.b, a.b.c."""
    parts = module.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts) + 1)]


# ---- one file's imports -----------------------------------------------------------------------

def imported_modules(path: Path, skip_functions: frozenset[str] = frozenset()) -> set[str]:
    """Every project module that an import statement anywhere in `path` may load, except inside
    the module-level functions named in `skip_functions`."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: set[str] = set()
    for node in walk_skipping(tree, skip_functions):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            found.update(from_import_modules(node, path))
    return {name for module in found for name in with_parents(module) if module_file(name)}


def walk_skipping(tree: ast.Module, skip_functions: frozenset[str]):
    """ast.walk, without the bodies of the top-level functions named in `skip_functions`."""
    for statement in tree.body:
        if isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef)) and statement.name in skip_functions:
            continue
        yield from ast.walk(statement)


def from_import_modules(node: ast.ImportFrom, path: Path) -> list[str]:
    """`from M import a, b` loads M, and M.a and M.b where those are submodules (`from
    seqbench.kinds import stock`); module_file() later drops the names that are not."""
    base = node.module or ""
    if node.level:  # relative: resolved against the importing file's package
        package = (module_name(path) or "").split(".")
        if path.name != "__init__.py":
            package = package[:-1]
        package = package[: len(package) - (node.level - 1)]
        base = ".".join(part for part in [*package, base] if part)
    return [base] + [f"{base}.{alias.name}" for alias in node.names if alias.name != "*"]


# ---- closures ---------------------------------------------------------------------------------

def kind_names() -> list[str]:
    """The registered kinds (the registry in kinds/__init__.py is the one list of them)."""
    from seqbench.kinds import KINDS

    return sorted(KINDS)


def kind_modules() -> set[str]:
    return {f"{PACKAGE}.kinds.{kind}" for kind in kind_names()}


def closure(start: Path, kind: str | None = None, skip_functions: frozenset[str] = frozenset()) -> set[Path]:
    """The project files that running `start` may import, transitively; with `kind`, the
    modules of the other kinds are left out (see the module docstring for why)."""
    left_out = {m for m in kind_modules() if kind is not None and m != f"{PACKAGE}.kinds.{kind}"}
    start = start.resolve()
    files = {start}
    pending = [(start, skip_functions)]
    name = module_name(start)
    if name:  # importing a module runs its packages' __init__.py first
        files.update(module_file(parent) for parent in with_parents(name)[:-1])
    while pending:
        path, skipped = pending.pop()
        for module in imported_modules(path, skipped) - left_out:
            target = module_file(module)
            if target not in files:
                files.add(target)
                pending.append((target, frozenset()))
    return files


def stage_closure(stage: str, kind: str | None = None) -> set[Path]:
    """The project files stage `stage` runs: for a per-dataset stage, those of a dataset of
    `kind` (None: every kind's)."""
    spec = STAGES[stage]
    other_commands = frozenset()
    if spec.cli_command:
        other_commands = frozenset(cli_commands()) - {spec.cli_command}
    return closure(spec.script, kind if spec.per_dataset else None, other_commands)


def cli_commands() -> list[str]:
    """The names of cli.py's command functions (those decorated with `@app.command()`)."""
    tree = ast.parse((PACKAGE_DIR / "cli.py").read_text(encoding="utf-8"))
    return [node.name for node in tree.body if isinstance(node, ast.FunctionDef)
            and any("command" in ast.unparse(decorator) for decorator in node.decorator_list)]


def relative_to_root(files: set[Path]) -> list[str]:
    """Paths as dvc.yaml writes them (src/seqbench/train.py), sorted."""
    return sorted(path.relative_to(ROOT).as_posix() for path in files)


# ---- checking dvc.yaml -------------------------------------------------------------------------

CODE_DIRS = ("src/", "flows/")  # deps under these are code; the others are data and params


def missing_deps(pipeline: dict) -> list[str]:
    """What dvc.yaml (parsed, as a dict) gets wrong about its stages' code, one line each: a
    stage with no entry in STAGES or another command, a file of a stage's closure that no dep
    covers, a code dep that does not exist. Empty when all is well. Deps beyond the closure are
    allowed: a `foreach` stage names kinds/classify.py for every kind, as only some need it."""
    stages = pipeline.get("stages", {})
    problems = [f"{name}: a stage without an entry in seqbench/stages.py STAGES"
                for name in stages if name not in STAGES]
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
    for kind in kind_names() if STAGES[name].per_dataset else [None]:
        code_deps = [dep.replace("${item.kind}", kind or "") for dep in deps if dep.startswith(CODE_DIRS)]
        problems = [f"{dep} is a dep but does not exist" for dep in code_deps if not (ROOT / dep).exists()]
        problems += [f"runs {path} but its deps miss it"
                     for path in relative_to_root(stage_closure(name, kind)) if not covers(code_deps, path)]
        for problem in problems:
            found.setdefault(problem, []).append(kind)
    return [f"{name}: {problem}" + (f" (for {', '.join(kinds)} datasets)" if kinds != [None] else "")
            for problem, kinds in found.items()]


def covers(deps: list[str], path: str) -> bool:
    """Is `path` one of `deps` or inside a folder among them?"""
    return any(path == dep or path.startswith(dep.rstrip("/") + "/") for dep in deps)


# ---- the code digest of runs and studies --------------------------------------------------------

def run_code_files(kind: str) -> list[Path]:
    """The package files a training run or search trial on a dataset of `kind` executes."""
    start = module_file(RUN_MODULE)
    return sorted(closure(start, kind), key=lambda path: path.relative_to(PACKAGE_DIR).as_posix())


def code_sha256(kind: str) -> str:
    """A digest of run_code_files(kind): each file's path relative to the package, then its
    bytes, in sorted order, so it is the same on any machine and checkout location."""
    digest = hashlib.sha256()
    for path in run_code_files(kind):
        relative = path.relative_to(PACKAGE_DIR).as_posix()
        content = path.read_bytes()
        digest.update(f"{relative}\0{len(content)}\0".encode())
        digest.update(content)
    return digest.hexdigest()
