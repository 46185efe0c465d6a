"""Training runs on workers that share no disk with the project (`runner: dask` with a
`dask_address`): inputs go out as bytes, results come back as bytes, the client writes them.

    client: ship_run()      reads the prepared arrays, the chosen budget and any resumable run
                            folder; returns the inputs (or the result of a finished run)
    worker: train_remote()  a pure function of those inputs: trains in a private temporary
                            folder, returns the run folder's files and the metrics
    client: land_run()      writes the files into models/<d>/runs/<cell>/seed<k>/ atomically

The worker runs exactly the code of a local run (training.fit's run_setup and fit_run) on exactly the
same inputs, so its results are the same bit for bit. What differs is resume: a local run
writes its checkpoints in place while it trains, so a killed run resumes from its last epoch;
a remote run's checkpoints live on the worker until the run ends. A run lost with its worker is
trained again from the last state the client holds: its run folder as it was when the run was
shipped (a run a killed local training left behind resumes on the worker), else the start.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path, PurePosixPath

from seqbench.errors import SeqbenchError
from seqbench.training.runs import METRICS, TIMES

# Files of a run folder that a worker needs to resume it: everything but the record of a
# finished run (which would make it a finished run) and the final weights (rewritten anyway).
NOT_SHIPPED = {METRICS, TIMES, "model.pt"}


# ---- the client: what goes out ---------------------------------------------------------------


def ship_run(name: str, cell: str, seed: int, params_path: Path | str, threads: int) -> tuple[dict | None, dict | None]:
    """(inputs for train_remote, None), or (None, metrics) when the run is already finished
    with the same config, as a local run would reuse it."""
    from seqbench.training.runs import claimed_run

    # The config is computed here too: it decides whether a finished run is reused, and the
    # worker checks that its own (its code, the bytes it received) is the same.
    with claimed_run(params_path, name, cell, seed, threads) as run:
        if run.finished is not None:
            return None, run.finished
        resume = folder_files(run.folder, skip=NOT_SHIPPED)
    spec = run.spec
    inputs = {
        "arrays_npz": spec.prepared.npz,
        "meta": spec.prepared.meta,
        "budget": spec.budget.model_dump(mode="json"),
        "cross_validation": spec.cross_validation,
        "config": run.config,
        "threads": threads,
        "resume": resume,
    }
    return inputs, None


def folder_files(folder: Path, skip: set = frozenset()) -> dict[str, bytes]:
    """Every file below `folder` as {posix relative path: bytes} (nothing when it is absent)."""
    if not folder.is_dir():
        return {}
    return {
        path.relative_to(folder).as_posix(): path.read_bytes()
        for path in sorted(folder.rglob("*"))
        if path.is_file() and path.relative_to(folder).as_posix() not in skip
    }


def unpack(files: dict[str, bytes], folder: Path) -> None:
    """Write {relative path: bytes} below `folder`, refusing paths that would leave it."""
    for name, data in files.items():
        relative = PurePosixPath(name)
        if relative.is_absolute() or ".." in relative.parts or not relative.parts:
            raise SeqbenchError(f"a run file named {name!r} would be written outside its run folder")
        target = folder.joinpath(*relative.parts)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)


# ---- the worker: a pure function ----------------------------------------------------------


def train_remote(name: str, cell: str, seed: int, inputs: dict) -> dict:
    """Train one run from `inputs` (ship_run's) in a private temporary folder, which is removed
    afterwards; return {"metrics", "files"}: the run folder's files as bytes. In the run's
    numerics mode: on this worker when it can, else in a fresh process (numerics.py)."""
    from seqbench.numerics import in_mode

    return in_mode(inputs["config"].get("numerics", "native"), _train_remote, name, cell, seed, inputs)


def _train_remote(name: str, cell: str, seed: int, inputs: dict) -> dict:
    from seqbench.settings import Budget
    from seqbench.training.fit import fit_run, run_setup
    from seqbench.training.prepared import Prepared
    from seqbench.training.specs import RunSpec

    prepared = Prepared.from_bytes(inputs["arrays_npz"], inputs["meta"])
    budget = Budget(**inputs["budget"])
    numerics = inputs["config"].get("numerics", "native")
    spec = RunSpec(name, cell, seed, budget, prepared, inputs["cross_validation"], inputs["threads"], numerics)
    model, config = run_setup(spec)
    check_same_config(config, inputs["config"])
    with tempfile.TemporaryDirectory(prefix="seqbench-run-") as tmp:
        run_dir = Path(tmp) / "run"
        unpack(inputs["resume"], run_dir)
        metrics = fit_run(spec, model, run_dir, config)
        return {"metrics": metrics, "files": folder_files(run_dir)}


def check_same_config(mine: dict, shipped: dict) -> None:
    """A worker with other seqbench code (another version on the cluster) would train something
    else than the project asked for: stop, naming what differs."""
    mine = json.loads(json.dumps(mine))
    if mine != shipped:
        keys = sorted(k for k in set(mine) | set(shipped) if mine.get(k) != shipped.get(k))
        raise SeqbenchError(
            f"this Dask worker's run differs from the project's in {', '.join(keys)}: install the "
            "project's seqbench version on the workers (code_sha256: its code)"
        )


# ---- the client: what comes back ---------------------------------------------------------


def land_run(name: str, cell: str, seed: int, params_path: Path | str, outputs: dict) -> dict:
    """Write a remote run's files and metrics into its run folder, as one atomic swap: the
    folder holds the old state or the finished run, never a mix. Returns the metrics."""
    from seqbench.io import atomic_dir
    from seqbench.locks import run_folder_lock
    from seqbench.paths import Paths
    from seqbench.training.runs import run_key, write_run_metrics

    paths = Paths(Path(params_path).resolve().parent)
    with run_folder_lock(paths.root, run_key(name, cell, seed)), atomic_dir(paths.run_dir(name, cell, seed)) as tmp:
        unpack(outputs["files"], tmp)
        write_run_metrics(outputs["metrics"], tmp)
    return outputs["metrics"]


class ShippedRun:
    """A remote run, collected like a local run's future: result() lands the run's files (once)
    and returns its metrics. A reused finished run has no future; one that could not be
    shipped raises its error.

    A run whose worker dies is started again on another worker by the Dask scheduler itself,
    up to its `distributed.scheduler.allowed-failures` (3 by default); Prefect's retries cannot
    see that loss, as they run inside the dead worker. When the scheduler gives up (KilledWorker),
    the run is submitted again, up to `retries` times (train.retries), then fails by name."""

    def __init__(self, name: str, cell: str, seed: int, params_path, submit=None, retries: int = 0):
        self.key, self.params_path = (name, cell, seed), params_path
        self.submit, self.retries = submit, retries
        self.future, self.finished, self.error = None, None, None

    def result(self) -> dict:
        if self.error is not None:
            raise self.error
        if self.finished is None:
            self.finished = land_run(*self.key, self.params_path, self.outputs())
        return self.finished

    def outputs(self) -> dict:
        from distributed import KilledWorker

        for attempt in range(self.retries + 1):
            try:
                return self.future.result()
            except KilledWorker:
                if attempt == self.retries:
                    raise
                name, cell, seed = self.key
                print(
                    f"{name} {cell} seed{seed}: lost with its workers (KilledWorker); submitting it again "
                    f"({attempt + 1} of {self.retries} retries)",
                    file=sys.stderr,
                    flush=True,
                )
                self.future = self.submit()


# ---- search trials -------------------------------------------------------------------------


def ship_search(name: str, params_path: Path | str) -> dict:
    """What every search trial of a dataset needs, read once by the client: the arrays as bytes,
    the meta, the search settings and the budget the trials vary."""
    from seqbench.config import load_params
    from seqbench.paths import Paths
    from seqbench.training.prepared import load_prepared

    params = load_params(params_path)
    prepared = load_prepared(Paths(Path(params_path).resolve().parent).prepared(name))
    return {
        "arrays_npz": prepared.npz,
        "meta": prepared.meta,
        "setting": params.search(name).model_dump(mode="json"),
        "budget": params.budget(name).model_dump(mode="json"),
        "numerics": params.train.numerics,
    }


def trial_remote(
    name: str, cell: str, number: int, sampled: dict, history: list[dict], inputs: dict, threads: int = 1
) -> dict:
    """search.search_trial on a worker, from ship_search's inputs: it writes nothing, so its
    result (a small dict) is all that comes back."""
    from seqbench.settings import Budget, Search
    from seqbench.training.prepared import Prepared
    from seqbench.training.specs import TrialSpec
    from seqbench.training.trials import run_trial, trial_budget

    setting = Search(**inputs["setting"])
    budget = trial_budget(Budget(**inputs["budget"]), setting.space, sampled)
    prepared = Prepared.from_bytes(inputs["arrays_npz"], inputs["meta"])
    numerics = inputs.get("numerics", "native")
    return run_trial(TrialSpec(name, cell, number, budget, setting, history, prepared, threads, numerics))
