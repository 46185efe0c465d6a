"""validation: kfold — cross-validation chooses each cell's configuration and epoch count on a
small classification dataset, then every seed trains on all training and validation items."""

import json
import math
import statistics

import numpy as np
import pytest
import yaml
from test_search import run_script

from helpers import TINY_TRAIN, VIDEO, video_frame

FOLDS = 3


@pytest.fixture
def prepared_clips(project):
    """A prepared video dataset of 24 clips (two classes) with cross-validation on."""
    project.write("clips.csv", video_frame(clips=24, frames=6))
    project.params({"toy": {**VIDEO}})
    params = yaml.safe_load((project.root / "params.yaml").read_text())
    params["train"] = {
        **TINY_TRAIN,
        "seeds": [0],
        "size_match": "params",
        "param_budget": 300,
        "validation": "kfold",
        "folds": FOLDS,
        "max_epochs": 4,
        "patience": 2,
        "search": {
            "trials": 3,
            "parallel": 2,
            "startup_trials": 2,
            "space": {"learning_rate": {"low": 1e-3, "high": 3e-2, "log": True}},
        },
    }
    (project.root / "params.yaml").write_text(yaml.safe_dump(params))
    for step in ("ingest", "validate", "prepare"):
        result = project.run(step, "toy")
        assert result.exit_code == 0, result.output
    return project


def test_folds_partition_the_training_and_validation_items_by_class():
    from seqbench.training.trials import fold_items

    labels = np.array([0, 1] * 12)
    arrays = {
        "labels": labels,
        "idx_train": np.arange(0, 14),
        "idx_val": np.arange(14, 20),
        "idx_test": np.arange(20, 24),
    }
    folds = fold_items(arrays, FOLDS, seed=0)
    assert len(folds) == FOLDS
    held_out = np.concatenate([held for _, held in folds])
    assert sorted(held_out) == list(range(20))  # every pooled item held out once, never a test item
    for fit, held in folds:
        assert not set(fit) & set(held) and len(fit) + len(held) == 20
        assert abs(int((labels[held] == 0).sum()) - int((labels[held] == 1).sum())) <= 1  # stratified
    assert [h.tolist() for _, h in fold_items(arrays, FOLDS, seed=0)] == [h.tolist() for _, h in folds]


def test_the_folds_are_averaged_epoch_by_epoch_over_the_epochs_all_reached():
    from seqbench.training.trials import mean_curve

    assert mean_curve([[1.0, 0.5, 0.4, 0.9], [1.0, 0.7, 0.2]]) == pytest.approx([1.0, 0.6, 0.3])


def test_too_many_folds_for_a_class_is_a_clear_error():
    from seqbench.errors import SeqbenchError
    from seqbench.training.trials import fold_items

    arrays = {"labels": np.array([0, 0, 0, 0, 1, 1]), "idx_train": np.arange(4), "idx_val": np.arange(4, 6)}
    with pytest.raises(SeqbenchError, match="train.folds: 3 folds need at least 3"):
        fold_items(arrays, 3, seed=0)


def test_cross_validation_chooses_the_epochs_and_every_seed_fits_all_items(prepared_clips, prefect_server):
    root = prepared_clips.root
    # Poison the test clips: a search or final fit that read them would see NaN losses.
    prepared = root / "data/prepared/toy/arrays.npz"
    arrays = dict(np.load(prepared))
    for clip in arrays["idx_test"]:
        arrays["values"][arrays["offsets"][clip] : arrays["offsets"][clip + 1]] = np.nan
    np.savez(prepared, **arrays)
    pooled = len(arrays["idx_train"]) + len(arrays["idx_val"])

    result = run_script(prepared_clips, "flows/search.py", prefect_server)
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads((root / "reports/search/toy.json").read_text())
    assert summary["validation"] == {"method": "kfold", "folds": FOLDS}
    for cell, entry in summary["cells"].items():
        assert len(entry["trials"]) == 3
        for trial in (t for t in entry["trials"] if t["state"] == "complete"):
            assert len(trial["folds"]) == FOLDS
            curve = trial["mean_val_losses"]  # the folds' mean validation loss per epoch
            assert len(curve) == min(f["epochs"] for f in trial["folds"]) + 1  # epoch 0: untrained
            assert trial["value"] == min(curve) >= statistics.fmean(f["best_value"] for f in trial["folds"])
            assert trial["refit_epochs"] == max(1, curve.index(min(curve)))
            # The final fit's length: the folds' optimiser steps to that epoch (their mean).
            steps = statistics.fmean(f["steps_per_epoch"] for f in trial["folds"])
            assert trial["refit_steps"] == max(1, round(trial["refit_epochs"] * steps))
            assert trial["untrained_val_loss"] == curve[0]
        cv = entry["cross_validation"]
        assert cv["value"] == entry["best_value"]
        assert entry["config"]["max_epochs"] == cv["refit_epochs"]  # the folds' epoch count
        best = next(t for t in entry["trials"] if t["number"] == entry["best_trial"])
        assert cv["refit_steps"] == best["refit_steps"]

    result = run_script(prepared_clips, "flows/train.py", prefect_server)
    assert result.returncode == 0, result.stderr[-3000:]
    for cell, entry in summary["cells"].items():
        run = root / f"models/toy/runs/{cell}/seed0"
        metrics = json.loads((run / "metrics.json").read_text())
        assert metrics["validation"] == "kfold"
        # The optimiser steps cross-validation chose, in as many (larger) epochs as they take.
        steps = entry["cross_validation"]["refit_steps"]
        assert metrics["steps_run"] == metrics["refit_steps"] == steps
        pooled_batches = math.ceil(pooled / entry["config"]["batch_size"])
        assert metrics["epochs_run"] == metrics["best_epoch"] == math.ceil(steps / pooled_batches)
        assert metrics["best_val_loss"] == entry["cross_validation"]["value"]
        assert all(c["val_loss"] is None for c in metrics["curves"])  # nothing was held out
        assert metrics["train_samples"] == pooled  # every training and validation clip, no test clip
        state = __import__("torch").load(run / "model.pt", weights_only=True)
        assert all(bool(v.isfinite().all()) for v in state.values())


def refit(project, steps: int, folder: str) -> tuple[dict, dict]:
    """A final fit of the GRU (batch 4) on the pooled items for `steps` optimiser steps, as
    training runs it: (its metrics, its last checkpoint)."""
    import torch

    from seqbench.config import load_params
    from seqbench.training.fit import fit_run, run_setup
    from seqbench.training.prepared import load_prepared
    from seqbench.training.specs import RunSpec

    budget = load_params(project.root / "params.yaml").budget("toy").model_copy(update={"batch_size": 4})
    cross_validation = {"value": 0.5, "untrained_val_loss": 0.7, "refit_epochs": 9, "refit_steps": steps}
    prepared = load_prepared(project.root / "data/prepared/toy")
    spec = RunSpec("toy", "gru", 0, budget, prepared, cross_validation)
    model, config = run_setup(spec)
    metrics = fit_run(spec, model, project.root / folder, config)
    checkpoint = torch.load(project.root / folder / "checkpoints/last.ckpt", weights_only=True)
    return metrics, checkpoint


def test_the_final_fit_trains_for_the_optimiser_steps_cross_validation_chose(prepared_clips, monkeypatch):
    import torch

    from seqbench.training import fit

    arrays = np.load(prepared_clips.root / "data/prepared/toy/arrays.npz")
    pooled_batches = math.ceil((len(arrays["idx_train"]) + len(arrays["idx_val"])) / 4)
    steps = pooled_batches + 2  # one whole epoch on the pooled items, then two steps of the next
    metrics, checkpoint = refit(prepared_clips, steps, "a")
    # The optimiser's own count (AdamW's per-weight step), not only Lightning's: `steps`, where
    # the refit_epochs (9) x pooled batches an epoch-based refit would take is far more.
    adam = checkpoint["optimizer_states"][0]["state"]
    assert {int(state["step"]) for state in adam.values()} == {steps} and steps < 9 * pooled_batches
    assert metrics["steps_run"] == metrics["refit_steps"] == checkpoint["global_step"] == steps
    assert metrics["epochs_run"] == metrics["best_epoch"] == 2 == len(metrics["curves"])  # the second cut short

    # Killed after its first epoch's checkpoint, then resumed: bit-identical to the uninterrupted
    # fit (the same seed), with the same steps.
    start = fit.EpochLine.on_train_epoch_start

    def killed_at_second_epoch(self, trainer, module):
        if trainer.current_epoch == 1:
            raise RuntimeError("killed")
        start(self, trainer, module)

    monkeypatch.setattr(fit.EpochLine, "on_train_epoch_start", killed_at_second_epoch)
    with pytest.raises(RuntimeError, match="killed"):
        refit(prepared_clips, steps, "b")
    monkeypatch.setattr(fit.EpochLine, "on_train_epoch_start", start)
    resumed, _ = refit(prepared_clips, steps, "b")
    assert resumed["steps_run"] == steps and resumed["epochs_run"] == 2
    first, second = (torch.load(prepared_clips.root / f / "model.pt", weights_only=True) for f in ("a", "b"))
    assert all(torch.equal(first[k], second[k]) for k in first)
    # Resumed from the checkpoint of its cut-short last epoch (killed before metrics.json): done.
    again, _ = refit(prepared_clips, steps, "a")
    assert again["steps_run"] == steps and again["epochs_run"] == 2
    third = torch.load(prepared_clips.root / "a/model.pt", weights_only=True)
    assert all(torch.equal(first[k], third[k]) for k in first)


@pytest.mark.parametrize(
    "change, message",
    [
        ({"validation": "kfold", "search": {"trials": 0}}, "kfold needs train.search.trials >= 1"),
        ({"validation": "kfold", "folds": 1}, "train.folds"),
    ],
)
def test_bad_kfold_settings_are_reported(change, message):
    from seqbench.config import parse_params
    from seqbench.errors import ConfigError

    data = {"datasets": {"clips": dict(VIDEO)}, "train": {"search": {"trials": 2}, **change}}
    with pytest.raises(ConfigError, match=message):
        parse_params(data)


def test_kfold_is_refused_for_a_stock_dataset():
    from seqbench.config import parse_params
    from seqbench.errors import ConfigError

    data = {
        "datasets": {"prices": {"kind": "stock", "source": "p.csv", "train": {"validation": "kfold"}}},
        "train": {"search": {"trials": 2}},
    }
    with pytest.raises(
        ConfigError, match="datasets.prices: validation: kfold needs a classification dataset; a stock dataset"
    ):
        parse_params(data)
