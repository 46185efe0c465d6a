"""The kernel, not the cell: how much of the LSTM-vs-GRU time gap on a CPU is torch's oneDNN.

A training step (forward and backward) of a bare nn.LSTM and nn.GRU, each with oneDNN on and
off (torch.backends.mkldnn.flags), all four taking turns in one process so the machine's drifts
fall on every one. Printed as ratios, beside the cells' own multiply-add ratio:

- LSTM, oneDNN off / on: above 1 when the fused kernel is what makes the LSTM fast;
- GRU, oneDNN off / on: about 1, since torch has no oneDNN path for the GRU;
- GRU / LSTM time with oneDNN on (as training runs) and off (both cells on torch's loop),
  against GRU / LSTM multiply-adds per step: with both on the loop, time follows the work.

The default sizes are the stock forecaster's (4 features, lookback 30, batch 128, one thread),
the GRU at the hidden size that matches the LSTM's parameter count (37 for the LSTM's 32).

    python bench/rnn_kernels.py [--repeats 7] [--steps 20]
"""

from __future__ import annotations

import argparse
import statistics
import time

FEATURES, LOOKBACK, BATCH, THREADS = 4, 30, 128, 1
HIDDEN = {"lstm": 32, "gru": 37}


def step_seconds(rnn, x, steps: int, onednn: bool) -> float:
    """Seconds per training step (forward, backward) of `rnn` on `x`."""
    import torch

    with torch.backends.mkldnn.flags(enabled=onednn):
        rnn(x)[0].sum().backward()  # warm-up
        start = time.perf_counter()
        for _ in range(steps):
            rnn(x)[0].sum().backward()
        return (time.perf_counter() - start) / steps


def main(repeats: int = 7, steps: int = 20) -> dict:
    import warnings

    import torch
    from torch import nn

    from seqbench.training.cost import multiply_adds_per_step

    warnings.filterwarnings("ignore", message="TF32 acceleration")
    torch.set_num_threads(THREADS)
    torch.manual_seed(0)
    x = torch.randn(BATCH, LOOKBACK, FEATURES)
    rnns = {
        "lstm": nn.LSTM(FEATURES, HIDDEN["lstm"], batch_first=True),
        "gru": nn.GRU(FEATURES, HIDDEN["gru"], batch_first=True),
    }
    times = {(cell, onednn): [] for cell in rnns for onednn in (True, False)}
    for _ in range(repeats):
        for (cell, onednn), found in times.items():
            found.append(step_seconds(rnns[cell], x, steps, onednn))
    median = {key: statistics.median(found) for key, found in times.items()}
    work = {cell: multiply_adds_per_step(rnn) for cell, rnn in rnns.items()}
    ratios = {
        "lstm_onednn_off_over_on": median[("lstm", False)] / median[("lstm", True)],
        "gru_onednn_off_over_on": median[("gru", False)] / median[("gru", True)],
        "gru_over_lstm_time_onednn_on": median[("gru", True)] / median[("lstm", True)],
        "gru_over_lstm_time_onednn_off": median[("gru", False)] / median[("lstm", False)],
        "gru_over_lstm_multiply_adds": work["gru"] / work["lstm"],
    }
    print(
        f"oneDNN available: {torch.backends.mkldnn.is_available()}; torch {torch.__version__}; "
        f"{THREADS} thread; batch {BATCH} x {LOOKBACK} steps x {FEATURES} features; "
        f"hidden lstm {HIDDEN['lstm']}, gru {HIDDEN['gru']}"
    )
    for (cell, onednn), seconds in median.items():
        print(f"  {cell} oneDNN {'on ' if onednn else 'off'}: {seconds * 1e3:7.2f} ms per training step")
    print(f"  multiply-adds per step: lstm {work['lstm']:,}, gru {work['gru']:,}")
    for name, ratio in ratios.items():
        print(f"{name:>32}: {ratio:.2f}")
    return ratios


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--steps", type=int, default=20)
    args = parser.parse_args()
    main(args.repeats, args.steps)
