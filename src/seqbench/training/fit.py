"""One training run: a (dataset, cell, seed) with the dataset's budget, on the Lightning Trainer.

A run writes models/<dataset>/runs/<cell>/seed<k>/:

- checkpoints/best.ckpt, last.ckpt — Lightning checkpoints, written atomically; a killed run
  resumes from last.ckpt when started again;
- dvclive/ — per-epoch train_loss and val_loss (DVCLive's Lightning logger);
- untrained.pt, untrained.json — the model before training and its validation loss: early
  stopping counts it as epoch 0;
- model.pt — the best weights as a plain state dict, loadable with torch.load(weights_only=True);

With `validation: kfold` a run instead trains on the training and validation items together for
the optimiser steps cross-validation chose (no early stopping, no untrained.*), keeps the final
weights, and takes its validation scores from the search's cross-validation.
- config.json — what is needed to rebuild the model and transform new data;
- metrics.json — written last: its presence marks the run complete.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from pathlib import Path

import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import Callback, EarlyStopping, ModelCheckpoint
from lightning.pytorch.plugins import TorchCheckpointIO

from seqbench.io import atomic_path, write_json
from seqbench.models import build_model, datasets_for, param_budget

# A finished run is reused only if the code it ran is unchanged: the digest of its import closure.
from seqbench.training.digest import code_sha256
from seqbench.training.specs import RunSpec, TrialSpec

EVAL_BATCH = 512


class AtomicCheckpointIO(TorchCheckpointIO):
    """A checkpoint file is either complete or absent: written aside, then renamed."""

    def save_checkpoint(self, checkpoint, path, storage_options=None):
        with atomic_path(path) as tmp:
            super().save_checkpoint(checkpoint, tmp, storage_options)


class StepSeed(Callback):
    """Seeds torch's generator before every training step from (seed, step): dropout then draws
    the same numbers in a run resumed from a checkpoint as in an uninterrupted one (Lightning's
    checkpoints do not keep the generator's state)."""

    def __init__(self, seed: int):
        self.seed = seed

    def on_train_batch_start(self, trainer, module, batch, batch_idx):
        from seqbench.batching import epoch_seed

        torch.manual_seed(epoch_seed(self.seed, trainer.global_step))


class StopAfterSteps(Callback):
    """Ends training after `steps` optimiser steps, mid-epoch if need be: that epoch still ends
    (its hooks run, its checkpoint is written). Not Trainer(max_steps=...): with max_steps set,
    Lightning resumes a checkpoint written at an epoch's end as if killed inside that epoch,
    skips the next epoch's start hooks, and a killed run would not resume as it ran."""

    def __init__(self, steps: int):
        self.steps = steps

    def on_train_start(self, trainer, module):
        # A run resumed from the checkpoint of its last, cut-short epoch has no step left.
        trainer.should_stop = trainer.global_step >= self.steps

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
        if trainer.global_step >= self.steps:
            trainer.should_stop = True


class EpochLine(Callback):
    """One line per epoch: the run, the epoch, train and validation loss. Also keeps the
    epoch timings (saved in checkpoints, so they survive a resume)."""

    def __init__(self, label: str):
        self.label = label
        self.epoch_seconds: list[float] = []
        self.train_losses: list[float] = []
        self.val_losses: list[float] = []
        self._started = 0.0

    def on_train_start(self, trainer, module):
        print(f"{self.label}: training started", file=sys.stderr, flush=True)

    def on_train_epoch_start(self, trainer, module):
        self._started = time.perf_counter()

    def on_train_epoch_end(self, trainer, module):
        # Lightning 2 runs the epoch's validation before this hook, so both losses are in.
        seconds = time.perf_counter() - self._started
        # The module's own epoch mean: its train_loss is logged after callbacks run.
        train_loss = module.epoch_train_loss()
        # None where nothing is held out (a final fit on all items).
        val_loss = trainer.callback_metrics.get("val_loss")
        val_loss = None if val_loss is None else float(val_loss)
        self.epoch_seconds.append(seconds)
        self.train_losses.append(train_loss)
        self.val_losses.append(val_loss)
        shown = "-" if val_loss is None else f"{val_loss:.4f}"
        print(
            f"{self.label} epoch {trainer.current_epoch + 1}/{trainer.max_epochs}: "
            f"train {train_loss:.4f}  val {shown}  ({seconds:.1f}s)",
            file=sys.stderr,
            flush=True,
        )

    def state_dict(self):
        return {"epoch_seconds": self.epoch_seconds, "train_losses": self.train_losses, "val_losses": self.val_losses}

    def load_state_dict(self, state):
        self.epoch_seconds = list(state["epoch_seconds"])
        self.train_losses = list(state["train_losses"])
        self.val_losses = list(state["val_losses"])

    def curves(self) -> list[dict]:
        return [
            {"epoch": i + 1, "train_loss": t, "val_loss": v, "seconds": s}
            for i, (t, v, s) in enumerate(zip(self.train_losses, self.val_losses, self.epoch_seconds))
        ]


def run_config(spec: RunSpec, model) -> dict:
    """The record of what a run depends on: a run folder made with another is started over."""
    meta = spec.prepared.meta
    config = {
        "dataset": spec.dataset,
        "data_sha256": spec.prepared.sha256,
        "code_sha256": code_sha256(meta["kind"]),
        "kind": meta["kind"],
        "cell": spec.cell,
        "seed": spec.seed,
        "budget": spec.budget.model_dump(),
        "numerics": spec.numerics,  # native | portable: which kernels the CPU may run
        "model": {"class": type(model).__name__, "hparams": dict(model.hparams)},
        "preprocessing": meta,
    }
    if spec.cross_validation:
        config["cross_validation"] = spec.cross_validation
    return config


def quiet_lightning() -> None:
    """Keep the per-epoch line the only output: no banners about TPUs or model summaries."""
    import warnings

    warnings.filterwarnings("ignore", message=".*LeafSpec.*")  # a Lightning-internal deprecation
    # A final fit after cross-validation holds nothing out, on purpose.
    warnings.filterwarnings("ignore", message=".*no `val_dataloader`.*")
    for logger in ("pytorch_lightning", "lightning.pytorch", "lightning_fabric", "lightning"):
        logging.getLogger(logger).setLevel(logging.ERROR)


def run_setup(spec: RunSpec):
    """(model, config): the seeded initial model and the record of what the run depends on.
    The seed is set right before the model is built, so its initial weights depend on nothing
    else: the same wherever the run trains."""
    pl.seed_everything(spec.seed, workers=True, verbose=False)
    model = build_model(spec.prepared.meta, spec.cell, spec.budget, spec.prepared.arrays)
    return model, run_config(spec, model)


def fit_run(spec: RunSpec, model, run_dir: Path, config: dict) -> dict:
    """Train `model` into run_dir (resuming from its last checkpoint, if any): config.json,
    checkpoints, dvclive/, untrained.*, model.pt. Returns the metrics; writes no metrics.json."""
    torch.set_num_threads(spec.threads)
    run_dir.mkdir(parents=True, exist_ok=True)
    write_json(config, run_dir / "config.json")
    fit = fit_all if spec.cross_validation else fit_holdout
    metrics = fit(spec, model, run_dir, config)
    metrics["threads"] = spec.threads
    return metrics


def fit_holdout(spec: RunSpec, model, run_dir: Path, config: dict) -> dict:
    """Train on the training split, stop early on the validation split, keep the best epoch."""
    arrays, meta, budget, seed = spec.prepared.arrays, spec.prepared.meta, spec.budget, spec.seed
    sets = datasets_for(arrays, meta, ("train", "val"))
    train_loader, val_loader = loaders(sets, budget, seed)
    checkpoint = ModelCheckpoint(
        dirpath=run_dir / "checkpoints", filename="best", monitor="val_loss", mode="min", save_top_k=1, save_last=True
    )
    progress = EpochLine(spec.label)
    trainer = make_trainer(
        budget, [checkpoint, progress, EarlyStopping(monitor="val_loss", patience=budget.patience)], seed, run_dir
    )
    last = relocated(run_dir / "checkpoints" / "last.ckpt")
    untrained_loss = untrained_baseline(model, val_loader, run_dir, progress.label, resuming=last.exists())
    started = time.perf_counter()
    trainer.fit(
        model, train_loader, val_loader, ckpt_path=last if last.exists() else None, weights_only=True
    )  # a checkpoint holds tensors and plain values only
    fit_seconds = time.perf_counter() - started

    # Early stopping counts the untrained model as epoch 0: if no epoch beat it on validation,
    # it is the model kept. (The forecaster starts as the constant training-mean forecast.)
    if untrained_loss <= min(progress.val_losses):
        state = torch.load(run_dir / "untrained.pt", map_location="cpu", weights_only=True)
    else:
        # This run's own Lightning checkpoint, just written: tensors and plain values only.
        state = torch.load(checkpoint.best_model_path, map_location="cpu", weights_only=True)["state_dict"]
    weights = run_dir / "model.pt"
    save_weights(state, weights)
    losses = [untrained_loss, *progress.val_losses]  # index = epoch; 0 is the untrained model
    best_epoch = min(range(len(losses)), key=losses.__getitem__)
    scores = {
        "validation": "holdout",
        "best_val_loss": losses[best_epoch],
        "untrained_val_loss": untrained_loss,
        "best_epoch": best_epoch,
    }
    fitted = {"train_samples": len(sets["train"]), "fit_seconds": fit_seconds, "weights": weights}
    return run_metrics(config, scores, progress, trainer, model, **fitted)


def fit_all(spec: RunSpec, model, run_dir: Path, config: dict) -> dict:
    """Train on the training and validation items together for exactly the optimiser steps
    cross-validation chose (`refit_steps`: its epochs on a fold's smaller training part), and
    keep the final weights. The pooled items give more batches per epoch, so the fit takes
    fewer epochs than the folds did, the last one cut short. Nothing is held out, so the run's
    validation scores are the cross-validated ones of its cell."""
    import math

    import numpy as np

    arrays, meta, budget, seed = spec.prepared.arrays, spec.prepared.meta, spec.budget, spec.seed
    cross_validation = spec.cross_validation
    steps = refit_steps(spec)

    pooled = {**arrays, "idx_train": np.sort(np.concatenate([arrays["idx_train"], arrays["idx_val"]]))}
    train_set = datasets_for(pooled, meta, ("train",))["train"]
    train_loader = train_set.loader(budget.batch_size, shuffle=True, seed=seed)
    # Kept every epoch, so that a killed run resumes from its last epoch.
    checkpoint = ModelCheckpoint(dirpath=run_dir / "checkpoints", filename="final", save_top_k=1, save_last=True)
    progress = EpochLine(spec.label)
    # The epoch bound covers the steps, the last epoch cut short by StopAfterSteps.
    epochs = math.ceil(steps / len(train_loader))
    model.cosine_epochs = refit_cosine_epochs(cross_validation, steps, len(train_loader))
    callbacks = [checkpoint, progress, StopAfterSteps(steps)]
    trainer = make_trainer(budget, callbacks, seed, run_dir, max_epochs=epochs)
    last = relocated(run_dir / "checkpoints" / "last.ckpt")
    started = time.perf_counter()
    trainer.fit(
        model, train_loader, ckpt_path=last if last.exists() else None, weights_only=True
    )  # a checkpoint holds tensors and plain values only
    fit_seconds = time.perf_counter() - started
    weights = run_dir / "model.pt"
    save_weights(model.state_dict(), weights)
    scores = {
        "validation": "kfold",
        "best_val_loss": cross_validation["value"],
        "untrained_val_loss": cross_validation["untrained_val_loss"],
        "best_epoch": len(progress.epoch_seconds),  # the final weights are kept: the last epoch's
        "refit_steps": steps,
        "steps_run": trainer.global_step,
    }
    fitted = {"train_samples": len(train_set), "fit_seconds": fit_seconds, "weights": weights}
    return run_metrics(config, scores, progress, trainer, model, **fitted)


def refit_cosine_epochs(cross_validation: dict, steps: int, batches: int) -> float | None:
    """The refit's cosine horizon in its own epochs, such that the learning rate after each
    optimiser step is the one a fold had after as many steps: the folds decayed over
    fold_max_epochs epochs of their smaller training parts (steps / refit_epochs batches each),
    the refit's epochs hold `batches`. None (the trainer's max_epochs) for an older result."""
    fold_epochs = cross_validation.get("fold_max_epochs")
    if not fold_epochs:
        return None
    return fold_epochs * (steps / cross_validation["refit_epochs"]) / batches


def refit_steps(spec: RunSpec) -> int:
    """The optimiser steps a final fit trains for, as the search's cross-validation chose them."""
    from seqbench.errors import SeqbenchError

    steps = spec.cross_validation.get("refit_steps")
    if not isinstance(steps, int) or steps < 1:
        raise SeqbenchError(
            f"{spec.label}: the search result has no refit_steps for {spec.cell} (made by an older "
            f"version); rerun `dvc repro search@{spec.dataset}`"
        )
    return steps


def save_weights(state: dict, path: Path) -> None:
    """torch.save through an open file, atomically. Given a path, torch names the archive's
    records after the file (here a random temporary name), so equal weights would differ in
    bytes and DVC would see a changed run folder on every fresh run."""
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        torch.save(state, f)


def relocated(last: Path) -> Path:
    """`last`, its ModelCheckpoint state pointed at the folder it is in now. Lightning keeps the
    checkpoint folder's absolute path in the checkpoint and, resumed anywhere else (a run folder
    shipped to a Dask worker's temporary folder, or landed back), forgets which epoch was best
    and keeps the old best_model_path: the resumed run would then differ from an uninterrupted
    one. A checkpoint already in place is left untouched."""
    if not last.exists():
        return last
    here = os.path.realpath(last.parent)  # as ModelCheckpoint resolves its dirpath
    state = torch.load(last, map_location="cpu", weights_only=True)
    moved = False
    for key, saved in state.get("callbacks", {}).items():
        old = saved.get("dirpath") if key.startswith("ModelCheckpoint") else None
        if isinstance(old, str) and old != here:

            def move(value, old=old):
                return here + value[len(old) :] if isinstance(value, str) and value.startswith(old + os.sep) else value

            saved.update({name: move(value) for name, value in saved.items() if name != "best_k_models"})
            saved["dirpath"] = here
            saved["best_k_models"] = {move(path): score for path, score in saved.get("best_k_models", {}).items()}
            moved = True
    if moved:
        with atomic_path(last) as tmp:
            torch.save(state, tmp)
    return last


def loaders(sets: dict, budget, seed: int):
    """(shuffled training batches, validation batches)."""
    return (
        sets["train"].loader(budget.batch_size, shuffle=True, seed=seed),
        sets["val"].loader(EVAL_BATCH, shuffle=False),
    )


def fit_trial(spec: TrialSpec, arrays: dict, label: str, callbacks=(), stops: tuple = ()) -> dict:
    """One fit of a search trial on `arrays` (the prepared arrays, or a fold's): train on the
    training split, watch the validation split, keep nothing on disk. The test split is not
    touched. A callback may end it early by raising one of `stops` (a pruner's exception): then
    "stopped" is True."""
    meta, cell, budget, seed = spec.prepared.meta, spec.cell, spec.budget, spec.setting.seed
    pl.seed_everything(seed, workers=True, verbose=False)
    model = build_model(meta, cell, budget, arrays)
    sets = datasets_for(arrays, meta, ("train", "val"))
    train_loader, val_loader = loaders(sets, budget, seed)
    progress = EpochLine(label)
    untrained = validation_loss(model, val_loader)
    trainer = make_trainer(
        budget, [progress, EarlyStopping(monitor="val_loss", patience=budget.patience), *callbacks], seed
    )
    result = {
        "untrained_val_loss": untrained,
        "val_losses": progress.val_losses,
        "stopped": False,
        "parameters": model.sized_parameters(),
        "hidden_size": model.hparams.hidden_size,
        # Recorded so that the search's result needs no model (and no Lightning import) of its own.
        "param_budget": param_budget(meta, budget) if budget.size_match == "params" else None,
    }
    try:
        trainer.fit(model, train_loader, val_loader)
    except stops:
        result["stopped"] = True
    result["epochs"] = len(progress.val_losses)
    # Cross-validation turns its chosen epoch into optimiser steps with this (trials.refit_steps).
    result["steps_per_epoch"] = len(train_loader)
    return result


def validation_loss(model, val_loader) -> float:
    """The epoch-level validation loss as Lightning logs it: the batch-size-weighted mean."""
    total, count = 0.0, 0
    model.eval()
    with torch.no_grad():
        for batch in val_loader:
            loss, size = model.loss(batch)
            total, count = total + float(loss) * size, count + size
    model.train()
    return total / count


def untrained_baseline(model, val_loader, run_dir: Path, label: str, resuming: bool) -> float:
    """Validation loss and weights of the model before training (kept for a resumed run)."""
    record = run_dir / "untrained.json"
    if resuming and record.exists():
        return json.loads(record.read_text())["val_loss"]
    loss = validation_loss(model, val_loader)
    save_weights(model.state_dict(), run_dir / "untrained.pt")
    write_json({"val_loss": loss}, record)
    print(f"{label} untrained: val {loss:.4f}", file=sys.stderr, flush=True)
    return loss


def make_trainer(budget, callbacks, seed: int, run_dir: Path | None = None, max_epochs: int | None = None):
    """The Trainer of a run (checkpoints and a DVCLive log in run_dir) or, without run_dir, of a
    search trial (nothing written). `max_epochs`: the budget's unless given."""
    quiet_lightning()
    # cuDNN's RNNs are deterministic only with this cuBLAS workspace setting.
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    on_disk = {"logger": False, "enable_checkpointing": False}
    if run_dir is not None:
        from dvclive.lightning import DVCLiveLogger

        logger = DVCLiveLogger(
            dir=str(run_dir / "dvclive"),
            dvcyaml=False,  # runs write in parallel; dvc.yaml declares their plots itself
            save_dvc_exp=False,
            resume=(run_dir / "checkpoints" / "last.ckpt").exists(),
        )
        on_disk = {"logger": logger, "plugins": [AtomicCheckpointIO()], "default_root_dir": str(run_dir)}
    return pl.Trainer(
        max_epochs=budget.max_epochs if max_epochs is None else max_epochs,
        accelerator="auto",
        devices=1,
        deterministic="warn",  # deterministic where torch supports it; a warning where not
        gradient_clip_val=budget.gradient_clip or None,
        callbacks=[StepSeed(seed), *callbacks],
        enable_progress_bar=False,
        enable_model_summary=False,
        log_every_n_steps=1,  # only epoch-level values are logged; this silences a warning
        **on_disk,
    )


def run_metrics(
    config, scores: dict, progress: EpochLine, trainer, model, *, train_samples: int, fit_seconds: float, weights: Path
) -> dict:
    """A finished run's metrics; `scores`: how it was validated, its best and untrained
    validation loss and its best epoch."""
    best_epoch = scores["best_epoch"]
    epochs = len(progress.epoch_seconds)
    train_seconds = sum(progress.epoch_seconds)
    return {
        "dataset": config["dataset"],
        "cell": config["cell"],
        "seed": config["seed"],
        **scores,
        "epochs_run": epochs,
        "train_samples": train_samples,
        "train_seconds": round(train_seconds, 3),
        "seconds_to_best": round(sum(progress.epoch_seconds[:best_epoch]), 3),
        "train_samples_per_second": round(train_samples * epochs / train_seconds, 1) if train_seconds else None,
        "trainable_parameters": model.trainable_parameters(),
        "sized_parameters": model.sized_parameters(),
        "hidden_size": model.hparams.hidden_size,
        "checkpoint_bytes": weights.stat().st_size,
        "device": str(trainer.strategy.root_device),
        "last_fit_seconds": round(fit_seconds, 3),
        "curves": progress.curves(),
    }
