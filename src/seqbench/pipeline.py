"""The whole pipeline as DVC commands: what the scheduled Prefect flow (flows/pipeline.py) runs.

DVC stays in charge of what is up to date; this module runs `dvc pull / repro / push` in the
project, streams their output, tells which stages ran and which were skipped, and turns the
evaluations into the markdown table of verdicts that the flow publishes.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Callable

from seqbench.errors import SeqbenchError
from seqbench.redact import redact_text

RAN = re.compile(r"Running stage '([^']+)'")
SKIPPED = re.compile(r"Stage '([^']+)' didn't change, skipping")


def run_dvc(args: list[str], root: Path, on_line: Callable[[str], None] = print) -> str:
    """Run `dvc ARGS` in `root`, passing each output line to `on_line`; return the output.

    Every line is redacted first (a URL's password or token becomes ***): the lines go to
    Prefect's logs, and DVC may print a stage's command or a source's error with a URL in it.
    A failure raises SeqbenchError with DVC's own error lines.

    `--wait-for-lock`: DVC lets go of its lock while a stage's command runs and takes it back
    afterwards with only ~3 s of retries, so a hand-run `dvc status` at that moment would fail
    the stage after its outputs were written. Waiting instead, the pipeline is never failed by
    a read-only DVC command (other pipelines are kept out by seqbench's workspace lock).
    """
    env = dict(os.environ)
    # The stages call `seqbench` and `python`: the ones of this environment.
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    command = [sys.executable, "-m", "dvc", "--wait-for-lock", *args]
    lines = []
    with subprocess.Popen(command, cwd=root, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True, bufsize=1) as process:
        for line in process.stdout:
            line = redact_text(line.rstrip("\n"))
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


def stage_outcomes(output: str) -> dict:
    """Which stages `dvc repro` ran and which it skipped as unchanged, in order."""
    return {"ran": RAN.findall(output), "skipped": SKIPPED.findall(output)}


def remote_configured(root: Path) -> bool:
    return bool(run_dvc(["remote", "list"], root, on_line=lambda line: None).strip())


def repro_commands(chosen: list[str], declared: list[str]) -> list[list[str]]:
    """`dvc repro` argument lists: the whole pipeline, or the chosen datasets and then the report."""
    if set(chosen) == set(declared):
        return [["repro"]]
    return [["repro", *(f"evaluate@{name}" for name in chosen)], ["repro", "--single-item", "report"]]


def verdict_table(root: Path, datasets: list[str], outcomes: dict | None = None) -> str:
    """The markdown table of verdicts, one row per dataset, with a link to the report and,
    given `dvc repro`'s outcomes, the stages that ran and were skipped."""
    rows = ["| dataset | metric | LSTM vs GRU | p (Holm) | effect (b − a) | best baseline |", "|---|---|---|---|---|---|"]
    for name in datasets:
        path = root / "reports" / "eval" / f"{name}.json"
        if not path.exists():
            rows.append(f"| {name} | — | not evaluated | — | — | — |")
            continue
        result = json.loads(path.read_text(encoding="utf-8"))
        head = result["comparisons"][0]
        baseline = next((c["b"] for c in result["comparisons"] if c["b"] in result["baselines"]), "—")
        rows.append(
            f"| {name} | {head['metric']} | {head['a']} vs {head['b']}: {head['verdict']['text']} "
            f"| {head['verdict']['p_value']:.3g} | {head['effect']['difference']:+.4g} | {baseline} |"
        )
    report = (root / "reports" / "index.html").resolve()
    link = f"[the full report]({report.as_uri()})" if report.exists() else "no report rendered yet"
    text = "# LSTM vs GRU: verdicts\n\n" + "\n".join(rows) + f"\n\nDetails, plots and costs: {link}\n"
    if outcomes is not None:
        text += (f"\nStages run: {', '.join(outcomes['ran']) or 'none'}. "
                 f"Skipped as unchanged: {', '.join(outcomes['skipped']) or 'none'}.\n")
    return text
