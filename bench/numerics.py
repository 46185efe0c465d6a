"""What `train.numerics: portable` costs against `native` (numerics.py), per bundled dataset.

For each bundled dataset and cell, the model the search chose for it (reports/search/*.json: the
project's own Forecaster or Classifier at that hidden size, layers, dropout and batch size) trains
on synthetic batches of the dataset's shape: the forward pass, the loss, the backward pass,
gradient clipping and an AdamW step, one torch thread, as a run's training step does. Each mode
runs in a process of its own (the mode is fixed when torch first computes), the two taking turns
`--repeats` times so that the machine's drifts fall on both; the table gives the median time per
training sequence. The GRU's portable row uses the portable build of the fused kernel; a last
row per GRU shows torch's nn.GRU under portable, the other way portable could have gone.

The figure for the whole pipeline weighs each row by the sequences its final runs trained in the
last `make run` (reports/train/*.json: training sequences x epochs x runs); the search's trials
train the same shapes, so the same ratio holds for them.

    python bench/numerics.py [--repeats 5] [--sequences 1024]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
THREADS = 1
# Per dataset: what its model reads, (input width or vocabulary, steps per sequence), as in
# bench/rnn_kernels.py; the text model reads tokens through its 50-wide GloVe table.
DATASET_INPUTS = {
    "sp500_returns": ("features", 4, 30),
    "sp500_volatility": ("features", 4, 30),
    "text": ("tokens", 20000, 80),
    "video": ("clip", 1, 150),
}
TEXT_EMBEDDING = 50


def rows() -> list[dict]:
    """One row per bundled dataset and cell whose search result is in reports/search/, with the
    weight of that cell in the last make run (sequences trained by its final runs), if known."""
    found = []
    for name, (reads, width, steps) in DATASET_INPUTS.items():
        path = REPO / "reports" / "search" / f"{name}.json"
        if not path.exists():
            continue
        cells = json.loads(path.read_text())["cells"]
        trained = REPO / "reports" / "train" / f"{name}.json"
        summary = json.loads(trained.read_text())["cells"] if trained.exists() else {}
        for cell in ("lstm", "gru"):
            config = cells[cell]["config"]
            weight = None
            if cell in summary:
                run = next(iter(summary[cell]["per_seed"].values()))
                weight = run["train_samples"] * summary[cell]["mean_epochs_run"] * summary[cell]["runs"]
            found.append({"dataset": name, "cell": cell, "config": config, "reads": reads, "width": width,
                          "steps": steps, "weight": weight})  # fmt: skip
    return found


# ---- in a worker process: one numerics mode -------------------------------------------------


def model_for(row: dict, torch_gru: bool = False):
    from torch import nn

    from seqbench.models.classifier import Classifier
    from seqbench.models.forecaster import Forecaster

    config = row["config"]
    common = dict(
        cell=row["cell"],
        hidden_size=config["hidden_size"],
        layers=config["layers"],
        dropout=config["dropout"],
        learning_rate=config["learning_rate"],
        weight_decay=config["weight_decay"],
        forget_bias=config["forget_bias"],
    )
    if row["reads"] == "features":
        model = Forecaster(input_size=row["width"], **common)
    elif row["reads"] == "tokens":
        model = Classifier(
            num_classes=2, vocab_size=row["width"], embedding_size=TEXT_EMBEDDING, pooling="mean", **common
        )
    else:
        model = Classifier(num_classes=2, input_size=row["width"], pooling="mean", **common)
    if torch_gru:  # the same GRU through torch's own loop
        rnn = model.rnn
        plain = nn.GRU(rnn.input_size, rnn.hidden_size, rnn.num_layers, dropout=rnn.dropout, batch_first=True)
        plain.load_state_dict(rnn.state_dict())
        model.rnn = plain
    return model


def batches(row: dict, sequences: int):
    import torch

    generator = torch.Generator().manual_seed(0)
    size, steps = row["config"]["batch_size"], row["steps"]
    for start in range(0, sequences, size):
        n = min(size, sequences - start)
        if row["reads"] == "features":
            yield torch.randn(n, steps, row["width"], generator=generator), torch.randn(n, generator=generator)
            continue
        if row["reads"] == "tokens":
            x = torch.randint(1, row["width"], (n, steps), generator=generator)
        else:
            x = torch.randn(n, steps, row["width"], generator=generator)
        yield x, torch.full((n,), steps, dtype=torch.long), torch.randint(0, 2, (n,), generator=generator)


def seconds_per_sequence(row: dict, sequences: int, torch_gru: bool = False) -> float:
    import torch

    torch.manual_seed(0)
    model = model_for(row, torch_gru)
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=row["config"]["learning_rate"])

    def epoch(count: int) -> float:
        started = time.perf_counter()
        for batch in batches(row, count):
            optimizer.zero_grad()
            loss, _ = model.loss(batch)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
        return time.perf_counter() - started

    epoch(2 * row["config"]["batch_size"])  # warm-up: first calls, the kernel's load
    return epoch(sequences) / sequences


def worker(mode: str, plan: list[dict], sequences: int) -> None:
    from seqbench import numerics

    if not numerics.enter(mode):  # before torch's first computation
        raise SystemExit(f"could not enter {mode} numerics")
    import torch

    torch.set_num_threads(THREADS)
    from seqbench.models.fused_gru import kernel_available

    if not kernel_available():
        raise SystemExit("the fused GRU did not build here: nothing to compare (see the warning above)")
    found = {}
    for i, row in enumerate(plan):
        found[str(i)] = seconds_per_sequence(row, sequences)
        if mode == "portable" and row["cell"] == "gru":
            found[f"{i} nn.GRU"] = seconds_per_sequence(row, sequences, torch_gru=True)
    found["capability"] = torch.backends.cpu.get_cpu_capability()
    print(json.dumps(found))


# ---- the driver ---------------------------------------------------------------------------


def measure(mode: str, plan: list[dict], sequences: int) -> dict:
    """One worker process in `mode`: {row: seconds per sequence}."""
    done = subprocess.run(
        [sys.executable, __file__, "--worker", mode, "--sequences", str(sequences)],
        input=json.dumps(plan),
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"the {mode} worker failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(repeats: int, sequences: int) -> None:
    import torch

    plan = rows()
    if not plan:
        raise SystemExit("no reports/search/*.json: run the pipeline (make run) first")
    times = {"native": [], "portable": []}
    for _ in range(repeats):
        for mode in times:  # in turns
            times[mode].append(measure(mode, plan, sequences))
    median = {mode: {key: statistics.median(r[key] for r in runs) for key in runs[0] if key != "capability"}
              for mode, runs in times.items()}  # fmt: skip
    capability = {mode: runs[0]["capability"] for mode, runs in times.items()}
    print(
        f"torch {torch.__version__}, {THREADS} thread; ATen capability native {capability['native']}, "
        f"portable {capability['portable']}; median of {repeats} turns of {sequences} sequences per row"
    )
    print(f"{'dataset':<18}{'cell':<12}{'hidden, layers, batch':>22}{'native us/seq':>15}{'portable us/seq':>17}"
          f"{'portable/native':>17}")  # fmt: skip
    weighted = {"native": 0.0, "portable": 0.0}
    for i, row in enumerate(plan):
        native, portable = median["native"][str(i)], median["portable"][str(i)]
        config = row["config"]
        shape = f"{config['hidden_size']}, {config['layers']}, {config['batch_size']}"
        print(f"{row['dataset']:<18}{row['cell']:<12}{shape:>22}{native * 1e6:>15.1f}{portable * 1e6:>17.1f}"
              f"{portable / native:>16.2f}x")  # fmt: skip
        if row["cell"] == "gru":
            plain = median["portable"][f"{i} nn.GRU"]
            print(f"{'':<18}{'gru nn.GRU':<12}{'(portable)':>22}{'':>15}{plain * 1e6:>17.1f}{plain / native:>16.2f}x")
        if row["weight"]:
            weighted["native"] += native * row["weight"]
            weighted["portable"] += portable * row["weight"]
    if weighted["native"]:
        print(
            f"the last make run's final runs, weighted by the sequences they trained: native "
            f"{weighted['native'] / 60:.1f} min, portable {weighted['portable'] / 60:.1f} min of training steps, "
            f"portable/native {weighted['portable'] / weighted['native']:.2f}x"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--sequences", type=int, default=1024, help="training sequences timed per row and turn")
    parser.add_argument("--worker", choices=("native", "portable"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.worker, json.loads(sys.stdin.read()), args.sequences)
    else:
        main(args.repeats, args.sequences)
