"""The GRU's kernel on a CPU: seqbench's fused GRU against torch's nn.GRU and nn.LSTM.

One training epoch (forward, backward, AdamW step per batch; 40 clips of 150 steps, one torch
thread, GunPoint's one feature) for each cell at the same parameter budget: the LSTM at the
listed hidden size, each GRU at the largest hidden size with no more parameters. The three take
turns in one process so that the machine's drifts fall on all of them; medians of --repeats.

Shapes: the four of the issue that asked for the kernel (hidden, layers, batch), then each bundled
dataset's chosen configuration (reports/search/*.json: the LSTM's hidden size, layers and batch),
at its own sequence length and input width.

Target: the fused GRU at most 1.5x the LSTM's time on every shape (stretch: 1.0x; at equal
parameters the two cells do about the same multiply-adds, at equal hidden size the GRU 3/4).

    python bench/rnn_kernels.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CLIPS, STEPS, THREADS = 40, 150, 1
SHAPES = [(30, 2, 4), (37, 1, 8), (64, 1, 32), (128, 2, 64)]  # LSTM hidden, layers, batch
# Per dataset: (input width, steps per sequence) of what its model's RNN reads.
DATASET_INPUTS = {"sp500_returns": (4, 30), "sp500_volatility": (4, 30), "text": (50, 80), "video": (1, 150)}


def parameters(module) -> int:
    return sum(p.numel() for p in module.parameters())


def gru_hidden_for(lstm, layers: int, input_size: int) -> int:
    """The largest GRU hidden size with at most the LSTM's parameters."""
    from torch import nn

    budget, hidden = parameters(lstm), 1
    while parameters(nn.GRU(input_size, hidden + 1, layers)) <= budget:
        hidden += 1
    return hidden


def epoch_seconds(rnn, head, x, batch: int) -> float:
    import torch

    optimiser = torch.optim.AdamW([*rnn.parameters(), *head.parameters()])
    started = time.perf_counter()
    for i in range(0, len(x), batch):
        out, _ = rnn(x[i : i + batch])
        loss = head(out[:, -1]).square().mean()
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    return time.perf_counter() - started


def compare(hidden: int, layers: int, batch: int, input_size: int, steps: int, repeats: int) -> dict:
    import torch
    from torch import nn

    from seqbench.models.fused_gru import FusedGRU

    torch.manual_seed(0)
    x = torch.randn(CLIPS, steps, input_size)
    lstm = nn.LSTM(input_size, hidden, layers, batch_first=True)
    gru_hidden = gru_hidden_for(lstm, layers, input_size)
    rnns = {
        "lstm": lstm,
        "torch_gru": nn.GRU(input_size, gru_hidden, layers, batch_first=True),
        "fused_gru": FusedGRU(input_size, gru_hidden, layers, batch_first=True),
    }
    heads = {name: nn.Linear(rnn.hidden_size, 1) for name, rnn in rnns.items()}
    times = {name: [] for name in rnns}
    for name, rnn in rnns.items():
        epoch_seconds(rnn, heads[name], x, batch)  # warm-up
    for _ in range(repeats):
        for name, rnn in rnns.items():
            times[name].append(epoch_seconds(rnn, heads[name], x, batch))
    median = {name: statistics.median(found) for name, found in times.items()}
    return {"gru_hidden": gru_hidden, "parameters": {n: parameters(r) for n, r in rnns.items()}, **median}


def dataset_shapes() -> list[tuple[str, int, int, int, int, int]]:
    """(label, LSTM hidden, layers, batch, input width, steps) of each bundled dataset's chosen
    LSTM configuration, where its search result is in reports/search/."""
    found = []
    for name, (input_size, steps) in DATASET_INPUTS.items():
        path = REPO / "reports" / "search" / f"{name}.json"
        if path.exists():
            config = json.loads(path.read_text())["cells"]["lstm"]["config"]
            found.append((name, config["hidden_size"], config["layers"], config["batch_size"], input_size, steps))
    return found


def main(repeats: int = 5) -> None:
    import torch

    from seqbench.models.fused_gru import kernel_available

    torch.set_num_threads(THREADS)
    if not kernel_available():
        raise SystemExit("the fused GRU did not build here: nothing to compare (see the warning above)")
    rows = [(f"{h}, {layers}, {b}", h, layers, b, 1, STEPS) for h, layers, b in SHAPES] + dataset_shapes()
    print(f"torch {torch.__version__}, {THREADS} thread, {CLIPS} clips; one training epoch, median of {repeats}")
    header = (
        f"{'shape (hidden, layers, batch)':<32}{'steps':>6}{'GRU hidden':>11}{'LSTM ms':>9}{'nn.GRU ms':>10}"
        f"{'fused ms':>9}{'nn.GRU/LSTM':>12}{'fused/LSTM':>11}{'fused speed-up':>15}"
    )
    print(header)
    worst = 0.0
    for label, hidden, layers, batch, input_size, steps in rows:
        found = compare(hidden, layers, batch, input_size, steps, repeats)
        lstm, torch_gru, fused = found["lstm"], found["torch_gru"], found["fused_gru"]
        worst = max(worst, fused / lstm)
        print(
            f"{label:<32}{steps:>6}{found['gru_hidden']:>11}{lstm * 1e3:>9.1f}{torch_gru * 1e3:>10.1f}"
            f"{fused * 1e3:>9.1f}{torch_gru / lstm:>11.2f}x{fused / lstm:>10.2f}x{torch_gru / fused:>14.1f}x"
        )
    print(f"worst fused GRU / LSTM: {worst:.2f}x (target <= 1.5x, stretch <= 1.0x)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5)
    main(parser.parse_args().repeats)
