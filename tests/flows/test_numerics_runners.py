"""train.numerics: portable under each task runner and the pipeline's pool: every run computes in
its worker (the workers enter the mode before torch's first computation; none hands its run to a
fresh process), and they all train the same weights."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import torch
import yaml

REPO = Path(__file__).resolve().parents[2]
FRESH = "runs in a fresh portable process"  # what numerics.py says when it must


def run_flow(project, prefect_server, **train):
    params = yaml.safe_load((project.root / "params.yaml").read_text())
    params["train"].update(train, numerics="portable", seeds=[0])
    (project.root / "params.yaml").write_text(yaml.safe_dump(params))
    done = subprocess.run(
        [sys.executable, str(REPO / "flows/train.py"), "toy", "--params", str(project.root / "params.yaml")],
        cwd=project.root,
        env={**os.environ, **prefect_server},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert FRESH not in done.stderr + done.stdout
    runs = project.root / "models/toy/runs"
    found = {}
    for cell in ("lstm", "gru"):
        state = torch.load(runs / cell / "seed0" / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]
        found.update({f"{cell}/{key}": tensor.numpy().tobytes() for key, tensor in state.items()})
    shutil.rmtree(runs)
    return done.stderr + done.stdout, found


def test_portable_runs_train_in_their_workers_alike_under_every_runner(prepared_stock, prefect_server):
    from seqbench.config import load_params
    from seqbench.orchestration.pool import shared_pool

    _, sequential = run_flow(prepared_stock, prefect_server, runner="sequential")
    _, process = run_flow(prepared_stock, prefect_server, runner="process", workers=2)
    _, dask = run_flow(prepared_stock, prefect_server, runner="dask", workers=2)
    assert sequential == process == dask
    train = load_params(prepared_stock.root / "params.yaml").train
    with shared_pool(train, prepared_stock.root) as address:  # its workers enter portable as they warm up
        output, pooled = run_flow(prepared_stock, prefect_server, runner="process", workers=2)
        from distributed import Client

        from seqbench import numerics

        with Client(address, set_as_default=False) as client:  # the workers' own output is not the flow's
            assert set(client.run(numerics.current).values()) == {"portable"}
            assert set(client.run(torch.backends.cpu.get_cpu_capability).values()) == {"DEFAULT"}
    assert "Connecting to an existing Dask cluster" in output
    assert pooled == sequential
