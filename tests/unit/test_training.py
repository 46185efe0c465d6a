"""Training runs: determinism, resume after a kill, atomic checkpoints, and predict."""

import json
import os
import shutil
import signal
import subprocess
import sys

import pandas as pd
import pytest
import torch

from helpers import assert_clean_failure, fixed_search, random_walk_prices
from seqbench.training.fit import AtomicCheckpointIO
from seqbench.training.runs import train_run


def params_of(project):
    return project.root / "params.yaml"


def set_train(project, **budget):
    import yaml

    params = yaml.safe_load(params_of(project).read_text())
    params["train"].update(budget)
    params_of(project).write_text(yaml.safe_dump(params))
    fixed_search(project)


def test_same_seed_same_metrics(prepared_stock, tmp_path):
    first = train_run("toy", "gru", 0, params_of(prepared_stock))
    run_dir = prepared_stock.root / "models/toy/runs/gru/seed0"
    os.rename(run_dir, tmp_path / "first")
    second = train_run("toy", "gru", 0, params_of(prepared_stock))
    assert first["curves"] and len(first["curves"]) == 3
    for a, b in zip(first["curves"], second["curves"]):
        assert (a["train_loss"], a["val_loss"]) == (b["train_loss"], b["val_loss"])
    assert first["best_val_loss"] == second["best_val_loss"]
    other_seed = train_run("toy", "gru", 1, params_of(prepared_stock))
    assert other_seed["best_val_loss"] != first["best_val_loss"]


def test_a_finished_run_is_reused_and_a_changed_budget_retrains(prepared_stock):
    first = train_run("toy", "lstm", 0, params_of(prepared_stock))
    again = train_run("toy", "lstm", 0, params_of(prepared_stock))
    assert again == first  # read back from metrics.json, not retrained
    set_train(prepared_stock, max_epochs=2)
    changed = train_run("toy", "lstm", 0, params_of(prepared_stock))
    assert changed["epochs_run"] == 2


@pytest.mark.parametrize("content", ["", '{"best_val', "[]"])
def test_an_empty_or_corrupt_metrics_file_trains_the_run_again(prepared_stock, content):
    first = train_run("toy", "lstm", 0, params_of(prepared_stock))
    metrics = prepared_stock.root / "models/toy/runs/lstm/seed0/metrics.json"
    metrics.write_text(content)  # what a crash can leave on a file system that lost the write
    with pytest.warns(UserWarning, match="metrics.json: unreadable .*training this run again"):
        again = train_run("toy", "lstm", 0, params_of(prepared_stock))
    assert again["best_val_loss"] == first["best_val_loss"]  # trained again, the same result
    assert json.loads(metrics.read_text())["best_val_loss"] == first["best_val_loss"]


@pytest.mark.parametrize("state_file", ["config.json", "checkpoints/last.ckpt"])
def test_a_corrupt_config_or_checkpoint_starts_the_run_over(prepared_stock, state_file):
    first = train_run("toy", "lstm", 0, params_of(prepared_stock))
    run_dir = prepared_stock.root / "models/toy/runs/lstm/seed0"
    (run_dir / "metrics.json").unlink()  # as if killed before the end
    (run_dir / state_file).write_bytes(b"\x00 half a file")
    with pytest.warns(UserWarning, match=f"{state_file}: unreadable .*starting this run over"):
        again = train_run("toy", "lstm", 0, params_of(prepared_stock))
    assert again["best_val_loss"] == first["best_val_loss"] and again["epochs_run"] == first["epochs_run"]


def test_atomic_writes_reach_the_disk_before_and_after_the_rename(tmp_path, monkeypatch):
    from seqbench import io

    flushed = []
    real_fsync = os.fsync

    def recording_fsync(fd):
        flushed.append(os.readlink(f"/proc/self/fd/{fd}"))
        real_fsync(fd)

    monkeypatch.setattr(io.os, "fsync", recording_fsync)
    io.write_json({"a": 1}, tmp_path / "out.json")
    assert flushed[0].startswith(str(tmp_path / ".out.json.")) and flushed[1] == str(tmp_path)
    flushed.clear()
    with io.atomic_dir(tmp_path / "folder") as tmp:
        (tmp / "table.csv").write_text("x\n1\n")
    assert any(f.endswith("table.csv") for f in flushed) and flushed[-1] == str(tmp_path)


def test_ingest_puts_the_table_in_place_before_its_manifest(project, monkeypatch):
    from seqbench import io

    project.write("prices.csv", random_walk_prices(40))
    project.params({"toy": {"kind": "stock", "source": "prices.csv", "max_quarantine_fraction": 1.0}})
    renamed = []
    real_replace = os.replace
    monkeypatch.setattr(
        io.os, "replace", lambda src, dst: (renamed.append(os.path.basename(dst)), real_replace(src, dst))
    )
    result = project.run("ingest", "toy")
    assert result.exit_code == 0, result.output
    assert renamed == ["toy.parquet", "toy.manifest.json"]


def test_run_outputs_are_on_disk_and_weights_load_safely(prepared_stock):
    train_run("toy", "gru", 0, params_of(prepared_stock))
    run_dir = prepared_stock.root / "models/toy/runs/gru/seed0"
    for name in ("model.pt", "config.json", "metrics.json", "checkpoints/best.ckpt", "checkpoints/last.ckpt"):
        assert (run_dir / name).exists(), name
    state = torch.load(run_dir / "model.pt", weights_only=True)
    assert any(k.startswith("rnn.") for k in state)
    logged = list((run_dir / "dvclive").rglob("*.tsv"))
    assert logged, "dvclive logged the losses"


def test_killed_run_resumes_and_ends_as_an_uninterrupted_run(prepared_stock, tmp_path):
    set_train(prepared_stock, max_epochs=12, patience=12, dropout=0.3)
    twin = tmp_path / "twin"  # the same project, trained without interruption
    shutil.copytree(prepared_stock.root, twin)
    code = "import sys; from seqbench.training.runs import train_run; train_run('toy', 'lstm', 0, sys.argv[1])"
    process = subprocess.Popen(
        [sys.executable, "-c", code, str(params_of(prepared_stock))], stderr=subprocess.PIPE, text=True
    )
    run_dir = prepared_stock.root / "models/toy/runs/lstm/seed0"
    for line in process.stderr:  # wait for a few epochs, then kill it hard
        if "epoch 4/12" in line and (run_dir / "checkpoints/last.ckpt").exists():
            break
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    assert not (run_dir / "metrics.json").exists()
    finished = torch.load(run_dir / "checkpoints/last.ckpt", weights_only=True)["epoch"] + 1  # counts from 0

    resumed = subprocess.run(
        [sys.executable, "-c", code, str(params_of(prepared_stock))], capture_output=True, text=True, timeout=600
    )
    assert resumed.returncode == 0, resumed.stderr
    first_line = next(line for line in resumed.stderr.splitlines() if "epoch" in line)
    assert f"epoch {finished + 1}/12" in first_line, first_line
    uninterrupted = subprocess.run(
        [sys.executable, "-c", code, str(twin / "params.yaml")], capture_output=True, text=True, timeout=600
    )
    assert uninterrupted.returncode == 0, uninterrupted.stderr

    def outcome(root):
        metrics = json.loads((root / "models/toy/runs/lstm/seed0/metrics.json").read_text())
        losses = [(c["epoch"], c["train_loss"], c["val_loss"]) for c in metrics["curves"]]
        return metrics["best_val_loss"], metrics["epochs_run"], losses

    assert outcome(prepared_stock.root) == outcome(twin)
    assert outcome(twin)[1] == 12  # the interruption fell inside the run, not after it
    resumed_weights = torch.load(run_dir / "model.pt", weights_only=True)
    twin_weights = torch.load(twin / "models/toy/runs/lstm/seed0/model.pt", weights_only=True)
    assert all(torch.equal(resumed_weights[k], twin_weights[k]) for k in twin_weights)


def test_two_processes_on_one_run_folder_train_it_once(prepared_stock):
    set_train(prepared_stock, max_epochs=6, patience=6)
    code = (
        "import json, sys; from seqbench.training.runs import train_run; "
        "print(json.dumps(train_run('toy', 'gru', 0, sys.argv[1])['best_val_loss']))"
    )
    command = [sys.executable, "-c", code, str(params_of(prepared_stock))]
    both = [subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outputs = [process.communicate(timeout=600) for process in both]
    assert [process.returncode for process in both] == [0, 0], outputs
    assert outputs[0][0] == outputs[1][0]  # the same result ...
    started = sum(err.count("gru seed0: training started") for _, err in outputs)
    assert started == 1, outputs  # ... from one training: the second waited for the first, then reused it


def test_a_checkpoint_is_never_half_written(tmp_path, monkeypatch):
    target = tmp_path / "last.ckpt"
    AtomicCheckpointIO().save_checkpoint({"step": 1}, target)
    before = target.read_bytes()

    def crash_midway(self, checkpoint, path, storage_options=None):
        with open(path, "wb") as out:  # the process dies with half a file written
            out.write(b"partial")
        raise OSError("disk full")

    from lightning.pytorch.plugins import TorchCheckpointIO

    monkeypatch.setattr(TorchCheckpointIO, "save_checkpoint", crash_midway)
    with pytest.raises(OSError):
        AtomicCheckpointIO().save_checkpoint({"step": 2}, target)
    assert target.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["last.ckpt"]


def test_predict_writes_forecasts_for_new_data(prepared_stock):
    train_run("toy", "gru", 0, params_of(prepared_stock))
    prepared_stock.write("new.csv", random_walk_prices(days=20, seed=5))
    result = prepared_stock.run("predict", "toy", "new.csv", "--output", str(prepared_stock.root / "out.parquet"))
    assert result.exit_code == 0, result.output
    out = pd.read_parquet(prepared_stock.root / "out.parquet")
    assert len(out) == 20 - 5  # one forecast per full window of lookback 5 after the first return
    assert {"date", "predicted_log_return", "predicted_close"} <= set(out.columns)
    assert out["predicted_close"].notna().all()


def test_predict_refuses_a_model_of_another_kind_and_malformed_input(prepared_stock):
    train_run("toy", "gru", 0, params_of(prepared_stock))
    prepared_stock.write("reviews.csv", "text,label\nnice,great\n")
    wrong = prepared_stock.run("predict", "models/toy/runs/gru/seed0", "reviews.csv")
    assert_clean_failure(wrong, "does not fit this stock model", "missing column(s) date")
    prepared_stock.write("broken.parquet", b"PAR1 not really")
    assert_clean_failure(prepared_stock.run("predict", "toy", "broken.parquet"), "not a readable parquet file")
    assert_clean_failure(prepared_stock.run("predict", "nothing-here", "broken.parquet"), "neither a training run")


def test_predict_reads_its_input_within_the_ingest_bounds(prepared_stock):
    import yaml

    train_run("toy", "gru", 0, params_of(prepared_stock))
    params = yaml.safe_load(params_of(prepared_stock).read_text())
    params["ingest"] = {"max_bytes": 1000}
    params_of(prepared_stock).write_text(yaml.safe_dump(params))
    prepared_stock.write("big.csv", random_walk_prices(200))
    assert (prepared_stock.root / "big.csv").stat().st_size > 1000
    result = prepared_stock.run("predict", "toy", "big.csv")
    assert_clean_failure(result, "big.csv: is", "more than ingest.max_bytes")


def test_classifier_predictions_for_text(project):
    import yaml

    from helpers import TEXT, TINY_TRAIN, text_frame

    project.write("reviews.csv", text_frame(40))
    project.params({"rev": {**TEXT, "min_freq": 1}})
    params = yaml.safe_load((project.root / "params.yaml").read_text())
    params["train"] = {**TINY_TRAIN, "seeds": [0]}
    (project.root / "params.yaml").write_text(yaml.safe_dump(params))
    for step in ("ingest", "validate", "prepare"):
        assert project.run(step, "rev").exit_code == 0
    fixed_search(project, "rev")
    train_run("rev", "lstm", 0, project.root / "params.yaml")
    project.write("new.csv", "text\nthis was great\n<script>alert(1)</script>\n")
    result = project.run("predict", "rev", "new.csv", "-o", str(project.root / "labels.csv"))
    assert result.exit_code == 0, result.output
    out = pd.read_csv(project.root / "labels.csv")
    assert list(out.columns) == ["text", "predicted_label", "p_great", "p_other"]
    assert set(out["predicted_label"]) <= {"great", "other"}
    assert (out["p_great"] + out["p_other"]).round(5).eq(1).all()


def test_the_untrained_model_counts_as_epoch_zero(prepared_stock):
    set_train(prepared_stock, learning_rate=50.0)  # a step size that can only make things worse
    metrics = train_run("toy", "lstm", 0, params_of(prepared_stock))
    run_dir = prepared_stock.root / "models/toy/runs/lstm/seed0"
    assert metrics["best_val_loss"] == metrics["untrained_val_loss"] < min(c["val_loss"] for c in metrics["curves"])
    assert metrics["best_epoch"] == 0 and metrics["seconds_to_best"] == 0
    kept = torch.load(run_dir / "model.pt", weights_only=True)
    untrained = torch.load(run_dir / "untrained.pt", weights_only=True)
    assert all(torch.equal(kept[k], untrained[k]) for k in kept)


def test_changed_training_code_retrains_a_finished_run(prepared_stock, monkeypatch):
    import seqbench.training.fit as train_module

    first = train_run("toy", "gru", 0, params_of(prepared_stock))
    monkeypatch.setattr(train_module, "code_sha256", lambda kind: "other code")
    marker = prepared_stock.root / "models/toy/runs/gru/seed0/metrics.json"
    marker.write_text(json.dumps({**first, "best_val_loss": -1.0}))  # what reuse would return
    again = train_run("toy", "gru", 0, params_of(prepared_stock))
    assert again["best_val_loss"] == first["best_val_loss"]


def test_a_kfold_refit_decays_a_cosine_schedule_per_optimiser_step_as_the_folds_did():
    import math

    from seqbench.training.fit import refit_cosine_epochs

    # Folds: 5 batches an epoch over a 120-epoch horizon; the refit's pooled epochs hold 7.
    cv = {"fold_max_epochs": 120, "refit_epochs": 10}
    horizon = refit_cosine_epochs(cv, steps=50, batches=7)
    for refit_epoch in range(1, 8):
        fold_epoch = refit_epoch * 7 / 5  # the same optimiser steps
        assert math.cos(math.pi * refit_epoch / horizon) == pytest.approx(math.cos(math.pi * fold_epoch / 120))
    assert refit_cosine_epochs({"refit_epochs": 10}, steps=50, batches=7) is None  # an older result
