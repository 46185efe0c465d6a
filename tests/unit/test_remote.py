"""What a run or a search trial ships to a Dask worker: bytes and settings, never a path into
the project; and the shipped functions compute what the local ones do."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import torch

from seqbench.orchestration.remote import land_run, ship_run, ship_search, train_remote, trial_remote
from seqbench.stages.search import search_trial
from seqbench.timings import split
from seqbench.training.runs import read_run_metrics, train_run


def strings_in(value) -> list[str]:
    if isinstance(value, dict):
        return [s for key, item in value.items() for s in [*strings_in(key), *strings_in(item)]]
    if isinstance(value, (list, tuple)):
        return [s for item in value for s in strings_in(item)]
    return [value] if isinstance(value, str) else []


def assert_no_project_path(inputs: dict, root: Path) -> None:
    # The temp folder's name, not the full path: a relative or partial path would leak it too.
    leaks = [s for s in strings_in(inputs) if root.name in s or str(root) in s]
    assert leaks == []


def test_a_shipped_run_lands_what_a_local_run_writes(prepared_stock, tmp_path):
    root = prepared_stock.root
    twin = tmp_path.parent / f"{tmp_path.name}-twin"
    shutil.copytree(root, twin)
    inputs, finished = ship_run("toy", "gru", 1, root / "params.yaml", 1)
    assert finished is None and inputs["resume"] == {}  # nothing to resume yet
    assert_no_project_path(inputs, root)
    metrics = land_run("toy", "gru", 1, root / "params.yaml", train_remote("toy", "gru", 1, inputs))
    local = train_run("toy", "gru", 1, twin / "params.yaml")
    timings = {"train_seconds", "seconds_to_best", "train_samples_per_second", "last_fit_seconds", "curves"}
    assert {k: v for k, v in metrics.items() if k not in timings} == {
        k: v for k, v in local.items() if k not in timings
    }
    run, twin_run = root / "models/toy/runs/gru/seed1", twin / "models/toy/runs/gru/seed1"
    # As a local run keeps them: results in metrics.json, measured times apart in timings.json.
    results, times = split(json.loads(json.dumps(metrics)))
    assert json.loads((run / "metrics.json").read_text()) == results
    assert json.loads((run / "timings.json").read_text()) == times and times["train_seconds"] >= 0
    assert set(json.loads((twin_run / "timings.json").read_text())) == set(times)
    assert (run / "config.json").read_text() == (twin_run / "config.json").read_text()
    shipped, kept = (torch.load(r / "model.pt", weights_only=True) for r in (run, twin_run))
    assert all(torch.equal(shipped[k], kept[k]) for k in kept)
    # Landed like a local run: shipping it again finds it finished, as train_run would.
    assert ship_run("toy", "gru", 1, root / "params.yaml", 1) == (None, read_run_metrics(run))


def test_a_shipped_trial_scores_what_a_local_trial_scores(prepared_stock):
    root = prepared_stock.root
    inputs = ship_search("toy", root / "params.yaml")
    assert_no_project_path(inputs, root)
    sampled, history = {"learning_rate": 0.005}, []
    shipped = trial_remote("toy", "lstm", 0, sampled, history, inputs)
    local = search_trial("toy", "lstm", 0, sampled, history, str(root / "params.yaml"))
    shipped.pop("seconds"), local.pop("seconds")
    assert shipped == local


def test_a_run_file_outside_its_folder_is_refused(tmp_path):
    import pytest

    from seqbench.errors import SeqbenchError
    from seqbench.orchestration.remote import unpack

    for name in ("../escape", "/etc/passwd"):
        with pytest.raises(SeqbenchError, match="outside its run folder"):
            unpack({name: b"x"}, tmp_path / "run")


def test_a_shipped_run_resumes_from_the_checkpoint_the_client_holds(prepared_stock):
    """A run folder left unfinished (no metrics.json) travels with the run; the worker resumes
    from its last checkpoint (here: after the last epoch, so nothing is left to train)."""
    root = prepared_stock.root
    first = train_run("toy", "lstm", 0, root / "params.yaml")
    run = root / "models/toy/runs/lstm/seed0"
    (run / "metrics.json").unlink()
    inputs, _ = ship_run("toy", "lstm", 0, root / "params.yaml", 1)
    assert "checkpoints/last.ckpt" in inputs["resume"] and "model.pt" not in inputs["resume"]
    # A worker cannot read the client's folder: nothing may come from it but the shipped bytes
    # (Lightning's checkpoint names its own folder; the worker's copy is moved to its own).
    shutil.rmtree(run)
    outputs = train_remote("toy", "lstm", 0, inputs)
    assert outputs["metrics"]["curves"] == first["curves"]  # the epochs came from the checkpoint
    assert outputs["metrics"]["best_val_loss"] == first["best_val_loss"]


def test_a_tls_address_takes_its_certificates_from_params(prepared_stock):
    import pytest
    import yaml

    from seqbench.config import load_params
    from seqbench.errors import ConfigError
    from seqbench.orchestration.prefect import client_kwargs

    root = prepared_stock.root
    path = root / "params.yaml"
    params = yaml.safe_load(path.read_text())

    def train(**keys):
        path.write_text(yaml.safe_dump({**params, "train": {**params["train"], **keys}}))
        return load_params(path).train

    with pytest.raises(ConfigError, match="a tls:// dask_address needs"):
        train(runner="dask", dask_address="tls://10.0.0.5:8786")
    tls = {"ca_file": "ca.pem", "cert": "client.pem", "key": "client-key.pem"}
    with pytest.raises(ConfigError, match="is not a tls:// address"):
        train(runner="dask", dask_address="tcp://10.0.0.5:8786", dask_tls=tls)
    settings = train(runner="dask", dask_address="tls://10.0.0.5:8786", dask_tls=tls, dask_timeout_s=7)
    with pytest.raises(ConfigError, match=f"train.dask_tls.ca_file: {root / 'ca.pem'} is not a file"):
        client_kwargs(settings, root)
    for name in tls.values():
        (root / name).write_text("PEM")
    kwargs = client_kwargs(settings, root)
    security = kwargs["security"]
    assert kwargs["timeout"] == 7 and security.require_encryption
    assert (security.tls_ca_file, security.tls_client_cert, security.tls_client_key) == tuple(
        str(root / name) for name in tls.values()
    )


def test_an_unencrypted_scheduler_on_another_machine_is_warned_about():
    import warnings

    import pytest

    from seqbench.orchestration.prefect import warn_if_unencrypted

    with pytest.warns(UserWarning, match=r"tcp://10.1.2.3:8786 is unencrypted tcp:// to another machine.*pickles"):
        warn_if_unencrypted("tcp://10.1.2.3:8786")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for address in ("tcp://127.0.0.1:8786", "tls://10.1.2.3:8786", "localhost:8786"):
            warn_if_unencrypted(address)
