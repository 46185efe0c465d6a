"""The whole pipeline through DVC: what the scheduled Prefect flow (flows/pipeline.py) runs.

DVC stays in charge of what is up to date. This module plans the stages as `dvc repro` does,
reproduces them one at a time through DVC's Python API (so the flow can make each one a task),
streams their output, runs `dvc pull / push`, and turns the evaluations and the stages' outcomes
into the markdown that the flow publishes.
"""

from __future__ import annotations

import contextvars
import os
import subprocess
import sys
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Callable

from seqbench.errors import SeqbenchError
from seqbench.paths import Paths
from seqbench.redact import shown
from seqbench.timings import read_evaluation


def run_dvc(args: list[str], root: Path, on_line: Callable[[str], None] = print) -> str:
    """Run `dvc ARGS` in `root`, passing each output line to `on_line`; return the output.

    Every line is redacted first (a URL's password or token becomes ***): the lines go to
    Prefect's logs, and DVC may print a stage's command or a source's error with a URL in it.
    A failure raises SeqbenchError with DVC's own error lines.

    `--wait-for-lock`: a hand-run DVC command holding DVC's lock makes it wait, not fail (see
    reproduce_stage).
    """
    command = [sys.executable, "-m", "dvc", "--wait-for-lock", *args]
    lines = []
    with subprocess.Popen(
        command, cwd=root, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1
    ) as process:
        for line in process.stdout:
            line = shown(line.rstrip("\n"))
            lines.append(line)
            if line.strip():
                on_line(line)
    output = "\n".join(lines)
    if process.returncode != 0:
        raise dvc_error(args, output, root)
    return output


def dvc_error(args: list[str], output: str, root: Path) -> SeqbenchError:
    # DVC's own ERROR lines, and before them the failing stage's message (seqbench's "error: ...").
    errors = [line.strip() for line in output.splitlines() if line.lstrip().startswith(("ERROR", "error:"))]
    errors = errors or output.splitlines()[-5:]
    return SeqbenchError(f"`dvc {' '.join(args)}` failed in {root}: " + "; ".join(errors))


def remote_configured(root: Path) -> bool:
    return bool(run_dvc(["remote", "list"], root, on_line=lambda line: None).strip())


# ---- the stages, one at a time, through DVC's Python API --------------------------------------


class StageFailed(SeqbenchError):
    """A DVC stage failed; the message carries the stage's own error lines."""


def plan_stages(root: Path, chosen: list[str], declared: list[str]) -> list[str]:
    """The stages `dvc repro` would visit, in its order (DVC's own planner): the whole pipeline,
    or the chosen datasets' stages up to their evaluations, then the report."""
    from contextlib import chdir

    from dvc.dvcfile import PROJECT_FILE
    from dvc.exceptions import DvcException
    from dvc.repo import Repo
    from dvc.repo.reproduce import collect_stages, get_active_graph, plan_repro

    targets, then = [PROJECT_FILE], []
    if set(chosen) != set(declared):
        targets, then = [f"evaluate@{name}" for name in chosen], ["report"]
    # DVC addresses stages relative to the working folder, as the command line does in the root.
    with chdir(root):
        try:
            with Repo(str(root)) as repo:
                plan = plan_repro(get_active_graph(repo.index.graph), collect_stages(repo, targets))
                return [stage.addressing for stage in plan] + then
        except DvcException as exc:  # e.g. a malformed dvc.yaml: DVC's message is the news
            failure = exc
    raise SeqbenchError(f"cannot plan the pipeline in {root}: {failure}")


def reproduce_stage(root: Path, addressing: str, on_line: Callable[[str], None] = print, force: bool = False) -> bool:
    """Reproduce one stage as `dvc --wait-for-lock repro --single-item STAGE` would (with
    `--force`: even when DVC sees it unchanged); True if it ran, False if DVC skipped it.

    DVC's messages and the output of the stage's command go to `on_line`, redacted, line by line.
    A failure raises StageFailed with the stage's own error lines.

    `_wait_for_lock` is what the CLI's `--wait-for-lock` sets: DVC lets go of its lock while the
    command runs and takes it back afterwards with only ~3 s of retries, so a hand-run
    `dvc status` at that moment would fail the stage after its outputs were written. Waiting
    instead, the pipeline is never failed by a read-only DVC command (other pipelines are kept
    out by seqbench's workspace lock).
    """
    from contextlib import chdir

    from dvc.exceptions import DvcException
    from dvc.repo import Repo

    lines: list[str] = []

    def keep(line: str) -> None:
        lines.append(line)
        on_line(line)

    with chdir(root), stage_path(), captured_output(keep), dvc_messages():
        try:
            with Repo(str(root), _wait_for_lock=True) as repo:
                # Its "To track the changes with git" hint once per run (the flow's), not per stage.
                repo.scm_context.quiet = True
                return bool(repo.reproduce(addressing, single_item=True, force=force))
        except DvcException as exc:
            failure = exc
    raise stage_error(addressing, failure, lines)


def stage_error(addressing: str, exc: Exception, lines: list[str]) -> StageFailed:
    # The stage's own message (seqbench's "error: ..."), else DVC's reason (e.g. the exit code).
    errors = [
        line.strip().removeprefix("error:").strip() for line in lines if line.lstrip().startswith(("ERROR", "error:"))
    ]
    reasons = [str(exc)] + ([str(exc.__cause__)] if exc.__cause__ else [])
    return StageFailed(f"stage '{addressing}' failed: " + "; ".join(errors or reasons))


@contextmanager
def stage_path():
    """The stages call `seqbench` and `python`: the ones of this environment."""
    saved = os.environ.get("PATH", "")
    os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{saved}"
    try:
        yield
    finally:
        os.environ["PATH"] = saved


@contextmanager
def dvc_messages():
    """DVC's messages ("Running stage ...", "... didn't change, skipping") printed as its command
    line prints them, to file descriptor 1 itself: `import dvc` binds its handlers to whatever
    sys.stdout was at that moment, which captured_output may not see. Only there, too: passed on
    to the root logger, Prefect's console handler would print them again."""
    import logging

    from dvc.logger import ColorFormatter

    logger = logging.getLogger("dvc")
    stream = open(1, "w", encoding="utf-8", errors="replace", closefd=False)
    handler = logging.StreamHandler(stream)
    handler.setLevel(logging.INFO)
    handler.setFormatter(ColorFormatter(log_colors=False))
    saved = logger.handlers, logger.propagate, logger.level
    logger.handlers, logger.propagate = [handler], False
    logger.setLevel(logging.INFO)
    try:
        yield
    finally:
        logger.handlers, logger.propagate = saved[0], saved[1]
        logger.setLevel(saved[2])
        stream.close()


@contextmanager
def captured_output(on_line: Callable[[str], None]):
    """Pass each line written to this process's stdout and stderr to `on_line`, redacted, and
    echo it to the console, while the body runs.

    DVC runs a stage's command as a child that inherits these file descriptors (dvc/stage/run.py
    has no hook for its output), so the descriptors themselves are pointed at a pipe. The echo
    goes to the real stdout: `on_line` must not write to stdout or stderr itself.
    """
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    read_end, write_end = os.pipe()
    os.dup2(write_end, 1)
    os.dup2(write_end, 2)
    os.close(write_end)
    echo = os.fdopen(os.dup(saved[0]), "w", encoding="utf-8", errors="replace")
    # In the caller's context, so that on_line sees e.g. Prefect's run and settings.
    context = contextvars.copy_context()
    reader = threading.Thread(target=context.run, args=(_pump, read_end, echo, on_line), daemon=True)
    reader.start()
    try:
        yield
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(saved[0], 1)  # closes this process's write ends of the pipe: the reader sees EOF
        os.dup2(saved[1], 2)
        os.close(saved[0])
        os.close(saved[1])
        # A stage's stray grandchild may keep the pipe open; its later lines still reach on_line.
        reader.join(timeout=10)


def _pump(read_end: int, echo, on_line: Callable[[str], None]) -> None:
    with os.fdopen(read_end, encoding="utf-8", errors="replace") as pipe:
        for raw in pipe:
            line = shown(raw.rstrip("\n"))
            echo = _echo(echo, line)
            if line.strip():
                on_line(line)
    if echo is not None:
        echo.close()


def _echo(echo, line: str):
    """Write `line` to the console; a console gone away (a closed terminal) stops the echo, not
    the reading: an unread pipe would fill and block the stage."""
    if echo is None:
        return None
    try:
        echo.write(line + "\n")
        echo.flush()
        return echo
    except (OSError, ValueError):
        return None


def verdict_table(root: Path, datasets: list[str], stages: list[dict] | None = None) -> str:
    """The markdown table of verdicts, one row per dataset, with a link to the report and,
    given the stages' outcomes ({"stage", "outcome", "seconds"}), a table of them."""
    rows = [
        "| dataset | metric | LSTM vs GRU | p (Holm) | effect (b − a) | best baseline |",
        "|---|---|---|---|---|---|",
    ]
    for name in datasets:
        path = Paths(root).evaluation(name)
        if not path.exists():
            rows.append(f"| {name} | — | not evaluated | — | — | — |")
            continue
        result = read_evaluation(Paths(root), name)
        head = result["comparisons"][0]
        baseline = next((c["b"] for c in result["comparisons"] if c["b"] in result["baselines"]), "—")
        p_value = head["verdict"]["p_value"]  # None for a void comparison: it decides nothing
        rows.append(
            f"| {name} | {head['metric']} | {head['a']} vs {head['b']}: {head['verdict']['text']} "
            f"| {'—' if p_value is None else f'{p_value:.3g}'} | {head['effect']['difference']:+.4g} | {baseline} |"
        )
    text = "# LSTM vs GRU: verdicts\n\n" + "\n".join(rows) + f"\n\nDetails, plots and costs: {report_location(root)}\n"
    if stages is not None:
        text += "\n" + stage_table(stages)
    return text


def report_location(root: Path) -> str:
    """Where the report is, in words a reader of the Prefect UI can use: a browser does not
    follow a file:// link from an http:// page, so the path and the machine are named instead."""
    import socket

    report = Paths(root).report().resolve()
    if not report.exists():
        return "no report rendered yet"
    return (
        f"the report is `{report}` on {socket.gethostname()} (open it in a browser there, or serve "
        f"its folder: `python -m http.server -d {report.parent}`)"
    )


def stage_table(stages: list[dict]) -> str:
    """The stages in DVC's order: ran, skipped (unchanged), failed or not run, and how long each took."""
    rows = ["## Stages", "", "| stage | outcome | duration |", "|---|---|---|"]
    for stage in stages:
        seconds = "—" if stage["seconds"] is None else f"{stage['seconds']:.1f} s"
        rows.append(f"| {stage['stage']} | {stage['outcome']} | {seconds} |")
    return "\n".join(rows) + "\n"


def stage_summary(stages: list[dict]) -> str:
    """One line for the flow's log: the stages by outcome."""
    parts = []
    for outcome in ("ran", "skipped", "failed", "not run"):
        names = [stage["stage"] for stage in stages if stage["outcome"] == outcome]
        parts.append(f"{outcome}: {', '.join(names) or 'none'}")
    text = "stages " + "; ".join(parts)
    if any(stage["outcome"] == "ran" for stage in stages):
        text += ". DVC updated dvc.lock (and maybe .gitignore files): commit them with git to record this run"
    return text
