"""The code digest of training runs and search trials: which project files a run executes, and
their hash.

A finished run, or a search study, is reused only while the code that computed it is unchanged.
What a run computes is the import closure of training/trials.py (trials import training/fit.py,
so one closure serves both), cut to a boundary, `COMPUTES`: training/, models/, the dataset's kind
and the shared numeric modules. Plumbing the closure reaches (errors, redaction, atomic writes) and
everything outside it (stages, orchestration, the CLI, config.py with its schedule) can change
without retraining anything or restarting a study; tests/unit/test_digest.py checks both sides.

The closure is read from the source with `ast`, never by importing it, and covers every import
statement in a file, those inside functions too: the project imports heavy libraries (and some of
its own modules) inside the functions that need them. Only project code is followed:
`src/seqbench/**` and the flow scripts in `flows/`. orchestration/stage_deps.py uses the same
closure to check dvc.yaml's code deps.

Kinds: the registry kinds/__init__.py imports every kind statically, but a run only ever calls
its own dataset's kind, so a closure for one kind keeps the registry and that kind's module (with
what it imports, e.g. kinds/base.py and kinds/classify.py) and leaves out the other kinds'
modules: editing text.py need not retrain a stock dataset's runs.
"""

from __future__ import annotations

import ast
import hashlib
from pathlib import Path

PACKAGE = "seqbench"
PACKAGE_DIR = Path(__file__).resolve().parents[1]  # src/seqbench
ROOT = PACKAGE_DIR.parents[1]  # the project root (src/, flows/) of a checkout; the digest needs only the package

# Where a run's closure starts: a search trial (trials.py) runs fit.py's code, so the closure of
# trials.py covers both.
RUN_MODULE = "seqbench.training.trials"
# The boundary of the digest, relative to the package: what a run computes with. The closure also
# reaches errors.py, redact.py and io.py (messages and atomic writes), which change no number.
COMPUTES = ("training/", "models/", "kinds/", "batching.py", "metrics.py", "numerics.py", "stats.py", "settings.py")


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
    return files | compiled_companions(files)


def compiled_companions(files: set[Path]) -> set[Path]:
    """The C++ sources a module compiles at run time: beside it, with its stem
    (models/fused_gru.py builds models/fused_gru.cpp). They compute as much as the module."""
    return {path.with_suffix(".cpp") for path in files if path.with_suffix(".cpp").is_file()}


# ---- checking dvc.yaml -------------------------------------------------------------------------


# ---- the code digest of runs and studies --------------------------------------------------------


def run_code_files(kind: str) -> list[Path]:
    """The package files a training run or search trial on a dataset of `kind` executes."""
    files = closure(module_file(RUN_MODULE), kind)
    inside = [path for path in files if path.relative_to(PACKAGE_DIR).as_posix().startswith(COMPUTES)]
    return sorted(inside, key=lambda path: path.relative_to(PACKAGE_DIR).as_posix())


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
