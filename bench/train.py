"""Training benchmarks, each printed as a ratio of two things measured in this one run.

(a) Lightning overhead: our Forecaster trained by the Lightning Trainer against a bare PyTorch
    loop training the same model on the same batches. Target: throughput ratio >= 0.95.
(b) Parallel runs: LSTM and GRU trained at once in two processes (one torch thread each)
    against the two trained one after the other (each with every core). Target: >= 1.6x.

    python bench/train.py [--windows 20000] [--epochs 3]
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


def synthetic_windows(n: int, seed: int = 0):
    from seqbench.data import WindowDataset

    rng = np.random.default_rng(seed)
    rows = n + LOOKBACK
    features = rng.normal(size=(rows, FEATURES)).astype("float32")
    target = (features[:, 0] * 0.1 + rng.normal(size=rows) * 0.1).astype("float32")
    return WindowDataset(features, target, np.arange(LOOKBACK - 1, rows - 1), LOOKBACK)


def make_model(cell: str):
    import warnings

    import pytorch_lightning as pl

    # The model has a validation_step; these benchmarks time training alone.
    warnings.filterwarnings("ignore", message=".*no `val_dataloader`.*")

    from seqbench.models.forecaster import Forecaster

    pl.seed_everything(0, verbose=False)
    return Forecaster(input_size=FEATURES, cell=cell, hidden_size=HIDDEN)


def lightning_throughput(windows: int, epochs: int) -> float:
    """Samples/s of the training loop itself: from Lightning's on_train_start to on_train_end,
    as the bare loop is timed from its first batch (the Trainer's one-time setup excluded)."""
    import pytorch_lightning as pl
    from torch.utils.data import DataLoader

    from seqbench.train import quiet_lightning

    class LoopTimer(pl.Callback):
        def on_train_start(self, trainer, module):
            self.started = time.perf_counter()

        def on_train_end(self, trainer, module):
            self.seconds = time.perf_counter() - self.started

    quiet_lightning()
    data = synthetic_windows(windows)
    model = make_model("gru")
    timer = LoopTimer()
    trainer = pl.Trainer(max_epochs=epochs, accelerator="cpu", devices=1, logger=False,
                         enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False, gradient_clip_val=1.0, callbacks=[timer])
    trainer.fit(model, DataLoader(data, batch_size=BATCH, shuffle=False))
    return len(data) * epochs / timer.seconds


def bare_throughput(windows: int, epochs: int) -> float:
    import torch
    from torch.utils.data import DataLoader

    data = synthetic_windows(windows)
    model = make_model("gru")
    optimizer = model.configure_optimizers()
    loader = DataLoader(data, batch_size=BATCH, shuffle=False)
    started = time.perf_counter()
    for _ in range(epochs):
        for batch in loader:
            optimizer.zero_grad()
            loss, _ = model.loss(batch)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
    return len(data) * epochs / (time.perf_counter() - started)


def time_one_cell(cell: str, windows: int, epochs: int) -> float:
    """Seconds for Lightning to train one cell (run in its own process by --one)."""
    import pytorch_lightning as pl
    from torch.utils.data import DataLoader

    from seqbench.train import quiet_lightning

    quiet_lightning()
    model, data = make_model(cell), synthetic_windows(windows)
    trainer = pl.Trainer(max_epochs=epochs, accelerator="cpu", devices=1, logger=False,
                         enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False)
    started = time.perf_counter()
    trainer.fit(model, DataLoader(data, batch_size=BATCH))
    return time.perf_counter() - started


def start_one(cell: str, windows: int, epochs: int, threads: int):
    """A process training one cell with `threads` torch threads."""
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    command = [sys.executable, __file__, "--one", cell, "--threads", str(threads),
               "--windows", str(windows), "--epochs", str(epochs)]
    return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, text=True)


def fit_seconds(processes) -> list[float]:
    """Each process's own training time (imports and start-up excluded)."""
    times = []
    for p in processes:
        out, _ = p.communicate()
        if p.returncode:
            sys.exit("a benchmark training process failed")
        times.append(float(out.strip().splitlines()[-1]))
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--windows", type=int, default=20_000)
    parser.add_argument("--epochs", type=int, default=3)
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
    print(f"(a) Lightning vs a bare loop: GRU forecaster, hidden {HIDDEN}, batch {BATCH}, "
          f"{args.windows:,} windows, {args.epochs} epochs, {THREADS} thread …", flush=True)
    bare_throughput(args.windows // 10, 1)  # warm-up: first-call costs fall on neither side
    bares, lightnings = [], []
    for repeat in range(3):  # alternate the order; compare medians (the machine is noisy)
        sides = [(bares, bare_throughput), (lightnings, lightning_throughput)]
        for results, measure in sides if repeat % 2 == 0 else sides[::-1]:
            results.append(measure(args.windows, args.epochs))
    bare, lightning = statistics.median(bares), statistics.median(lightnings)
    ratio_a = lightning / bare
    print(f"    bare loop   {bare:10,.0f} samples/s")
    print(f"    Lightning   {lightning:10,.0f} samples/s")
    print(f"    ratio       {ratio_a:10.2f}   target >= 0.95: {'met' if ratio_a >= 0.95 else 'NOT met'}")

    print(f"(b) LSTM and GRU in parallel vs one after the other ({cores} cores) …", flush=True)
    # One after the other: the sum of the two training times.
    sequential = sum(fit_seconds([start_one(cell, args.windows, args.epochs, cores)])[0] for cell in ("lstm", "gru"))
    # At once: both processes start together; the pair takes as long as the slower one.
    threads = max(1, cores // 2)
    parallel = max(fit_seconds([start_one(cell, args.windows, args.epochs, threads) for cell in ("lstm", "gru")]))
    ratio_b = sequential / parallel
    print(f"    one after the other {sequential:7.1f} s  ({cores} threads each)")
    print(f"    in parallel         {parallel:7.1f} s  ({threads} thread(s) each)")
    print(f"    speed-up            {ratio_b:7.2f}x  target >= 1.6: {'met' if ratio_b >= 1.6 else 'NOT met'}")
    print(json.dumps({"lightning_over_bare": round(ratio_a, 3), "parallel_speedup": round(ratio_b, 3)}))


if __name__ == "__main__":
    main()
