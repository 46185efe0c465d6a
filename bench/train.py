"""Training benchmarks, each printed as a ratio of two things measured in this one run.

(a) Lightning overhead: our Forecaster trained by the Lightning Trainer against a bare PyTorch
    loop training the same model on the same batches, the two taking turns in one process.
    Target: throughput ratio >= 0.95.
(b) Parallel runs: LSTM and GRU trained at once in two processes (one torch thread each)
    against the two trained one after the other (each with every core). Target: >= 1.6x.
    The pair waits on its slower run, so the same is also measured on the training stage's
    real load: three runs of each cell through two parallel slots, cells in the order the
    comparison flow submits them.

    python bench/train.py [--windows 20000] [--epochs 3] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

import numpy as np

# The stock forecaster's default size and batch (params.yaml), one torch thread per run as the
# process runner gives each of two workers on two cores.
HIDDEN, LOOKBACK, FEATURES, BATCH, THREADS = 32, 30, 4, 128, 1

# A Trainer on the CPU that writes and prints nothing: only the loop is timed.
PLAIN_TRAINER = {
    "accelerator": "cpu",
    "devices": 1,
    "logger": False,
    "enable_checkpointing": False,
    "enable_progress_bar": False,
    "enable_model_summary": False,
}


def synthetic_windows(n: int, seed: int = 0):
    from seqbench.batching import WindowDataset

    rng = np.random.default_rng(seed)
    rows = n + LOOKBACK
    features = rng.normal(size=(rows, FEATURES)).astype("float32")
    target = (features[:, 0] * 0.1 + rng.normal(size=rows) * 0.1).astype("float32")
    return WindowDataset(features, target, np.arange(LOOKBACK - 1, rows - 1), LOOKBACK)


def make_model(cell: str):
    import warnings

    import lightning.pytorch as pl

    # The model has a validation_step; these benchmarks time training alone.
    warnings.filterwarnings("ignore", message=".*no `val_dataloader`.*")

    from seqbench.models.forecaster import Forecaster

    pl.seed_everything(0, verbose=False)
    return Forecaster(input_size=FEATURES, cell=cell, hidden_size=HIDDEN)


def bare_steps(model, optimizer, batches) -> None:
    """The bare PyTorch loop: the same steps the Trainer takes, gradient clipping included."""
    import torch

    for batch in batches:
        optimizer.zero_grad()
        loss, _ = model.loss(batch)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()


def lightning_and_bare_seconds(windows: int, epochs: int, chunk: int = 16) -> tuple[float, float]:
    """Seconds of training for the Trainer and for a bare loop, taken in turns in one process.

    After every `chunk` Trainer steps, a callback puts the same `chunk` batches through the bare
    loop on an identical model. The machine's speed drifts by ±15% over seconds, so two runs
    one after the other differ by more than what is measured here; in turns, both sides see
    the same drifts. Chunks, not single steps, so that each side runs with its own code and
    data warm in the cache. The Trainer's time is its training loop (on_train_start to
    on_train_end, setup excluded) less the time spent in the bare loop."""
    import itertools

    import lightning.pytorch as pl
    import torch
    from torch.utils.data import DataLoader

    from seqbench.training.fit import quiet_lightning

    class BareLoopInTurns(pl.Callback):
        def __init__(self):
            self.twin = make_model("gru")
            self.optimizer = self.twin.configure_optimizers()
            self.bare_seconds = 0.0

        def on_train_start(self, trainer, module):
            self.started = time.perf_counter()

        def on_train_epoch_start(self, trainer, module):
            self.batches = iter(DataLoader(data, batch_size=BATCH, shuffle=False))

        def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
            if (batch_idx + 1) % chunk == 0 or batch_idx + 1 == trainer.num_training_batches:
                self.bare_turn()

        def bare_turn(self):
            started = time.perf_counter()
            bare_steps(self.twin, self.optimizer, itertools.islice(self.batches, chunk))
            self.bare_seconds += time.perf_counter() - started

        def on_train_end(self, trainer, module):
            self.loop_seconds = time.perf_counter() - self.started

    quiet_lightning()
    data = synthetic_windows(windows)
    turns = BareLoopInTurns()
    trainer = pl.Trainer(max_epochs=epochs, gradient_clip_val=1.0, callbacks=[turns], **PLAIN_TRAINER)
    model = make_model("gru")
    trainer.fit(model, DataLoader(data, batch_size=BATCH, shuffle=False))
    # Same start, same batches, same steps: the two must end with the same weights.
    if not all(torch.equal(a, b) for a, b in zip(model.parameters(), turns.twin.parameters())):
        raise RuntimeError("the bare loop ended with other weights than the Trainer: not like for like")
    return turns.loop_seconds - turns.bare_seconds, turns.bare_seconds


def time_one_cell(cell: str, windows: int, epochs: int) -> float:
    """Seconds for Lightning to train one cell (run in its own process by --one)."""
    import lightning.pytorch as pl
    from torch.utils.data import DataLoader

    from seqbench.training.fit import quiet_lightning

    quiet_lightning()
    model, data = make_model(cell), synthetic_windows(windows)
    trainer = pl.Trainer(max_epochs=epochs, **PLAIN_TRAINER)
    started = time.perf_counter()
    trainer.fit(model, DataLoader(data, batch_size=BATCH))
    return time.perf_counter() - started


def start_one(cell: str, windows: int, epochs: int, threads: int):
    """A process training one cell with `threads` torch threads."""
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    command = [
        sys.executable,
        __file__,
        "--one",
        cell,
        "--threads",
        str(threads),
        "--windows",
        str(windows),
        "--epochs",
        str(epochs),
    ]
    return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, text=True)


def run_queue(cells: list[str], slots: int, windows: int, epochs: int) -> tuple[float, dict]:
    """Train `cells` through `slots` parallel processes, as a process pool runs them, each with
    its share of the cores. Returns the busiest slot's summed training time (process start-up
    excluded) and each cell's training times."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    busy: dict[int, float] = {}
    per_cell: dict[str, list[float]] = {}
    threads = max(1, (os.cpu_count() or 1) // slots)

    def train(cell: str) -> None:
        seconds = fit_seconds([start_one(cell, windows, epochs, threads)])[0]
        slot = threading.get_ident()
        busy[slot] = busy.get(slot, 0.0) + seconds
        per_cell.setdefault(cell, []).append(seconds)

    with ThreadPoolExecutor(max_workers=slots) as pool:
        list(pool.map(train, cells))
    return max(busy.values()), per_cell


def parallel_speedup(cells: list[str], windows: int, epochs: int, repeats: int) -> float:
    """Median over repeats of (one after the other, every core each) / (two at once, half the
    cores each), printing each repeat with every cell's mean training time."""

    def cell_times(per_cell: dict) -> str:
        return ", ".join(f"{c.upper()} {statistics.fmean(t):.1f} s" for c, t in sorted(per_cell.items()))

    ratios = []
    for repeat in range(repeats):
        modes = [1, 2] if repeat % 2 == 0 else [2, 1]  # alternate the order (the machine is noisy)
        results = {slots: run_queue(cells, slots, windows, epochs) for slots in modes}
        (sequential, seq_cells), (parallel, par_cells) = results[1], results[2]
        ratios.append(sequential / parallel)
        print(
            f"    one after the other {sequential:5.1f} s ({cell_times(seq_cells)}) · "
            f"two at once {parallel:5.1f} s ({cell_times(par_cells)}) · {ratios[-1]:.2f}x",
            flush=True,
        )
    return statistics.median(ratios)


def fit_seconds(processes) -> list[float]:
    """Each process's own training time (imports and start-up excluded)."""
    times = []
    for p in processes:
        out, _ = p.communicate()
        if p.returncode:
            sys.exit("a benchmark training process failed")
        times.append(float(out.strip().splitlines()[-1]))
    return times


def positive(text: str) -> int:
    """An argparse type: a whole number of at least 1 (0 repeats would leave nothing to compare)."""
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of at least 1, not {text!r}")
    return int(text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--windows", type=positive, default=20_000)
    parser.add_argument("--epochs", type=positive, default=3)
    parser.add_argument("--repeats", type=positive, default=3, help="repeats of each comparison")
    parser.add_argument("--one", choices=["lstm", "gru"], help=argparse.SUPPRESS)
    parser.add_argument("--threads", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    cores = os.cpu_count() or 1
    if args.one:
        import torch

        torch.set_num_threads(args.threads)
        print(time_one_cell(args.one, args.windows, args.epochs))
        return

    import torch

    torch.set_num_threads(THREADS)
    print(
        f"(a) Lightning vs a bare loop: GRU forecaster, hidden {HIDDEN}, batch {BATCH}, "
        f"{args.windows:,} windows, {args.epochs} epochs, {THREADS} thread, taken in turns …",
        flush=True,
    )
    lightning_and_bare_seconds(args.windows // 10, 1)  # warm-up: first-call costs fall on neither side
    samples = args.windows * args.epochs
    bares, lightnings = [], []
    for _ in range(args.repeats):
        lightning_seconds, bare_seconds = lightning_and_bare_seconds(args.windows, args.epochs)
        lightnings.append(samples / lightning_seconds)
        bares.append(samples / bare_seconds)
        print(
            f"    bare loop {bares[-1]:7,.0f} samples/s, Lightning {lightnings[-1]:7,.0f}: "
            f"{lightnings[-1] / bares[-1]:.3f}",
            flush=True,
        )
    ratio_a = statistics.median(light / bare for light, bare in zip(lightnings, bares))
    bare, lightning = statistics.median(bares), statistics.median(lightnings)
    print(f"    ratio       {ratio_a:10.2f}   (median)  target >= 0.95: {'met' if ratio_a >= 0.95 else 'NOT met'}")
    # Per step, the gap is the Trainer's own work (hooks, closure, loop bookkeeping): a fixed
    # cost, so the smaller the model's step, the larger its share.
    bare_ms, lightning_ms = 1000 * BATCH / bare, 1000 * BATCH / lightning
    print(f"    per step    {bare_ms:6.2f} ms bare, {lightning_ms:.2f} ms Lightning: {lightning_ms - bare_ms:+.2f} ms")

    print(
        f"(b) LSTM and GRU in parallel vs one after the other ({cores} cores; "
        f"one after the other: {cores} threads each, at once: {max(1, cores // 2)} each) …",
        flush=True,
    )
    ratio_b = parallel_speedup(["lstm", "gru"], args.windows, args.epochs, args.repeats)
    print(f"    speed-up            {ratio_b:7.2f}x  (median)  target >= 1.6: {'met' if ratio_b >= 1.6 else 'NOT met'}")
    # The pair waits on its slower run; the training stage's real load is three seeds of each
    # cell, submitted cell by cell as the comparison flow does.
    load = ["lstm"] * 3 + ["gru"] * 3
    print(f"    the training stage's load, {len(load)} runs (3 per cell) through 1 or 2 slots …", flush=True)
    ratio_load = parallel_speedup(load, args.windows, args.epochs, args.repeats)
    print(
        f"    speed-up            {ratio_load:7.2f}x  (median)  "
        f"target >= 1.6: {'met' if ratio_load >= 1.6 else 'NOT met'}"
    )
    print(
        json.dumps(
            {
                "lightning_over_bare": round(ratio_a, 3),
                "parallel_speedup": round(ratio_b, 3),
                "parallel_speedup_stage_load": round(ratio_load, 3),
            }
        )
    )


if __name__ == "__main__":
    main()
