"""train.numerics (numerics.py): a portable run's weights do not depend on the CPU dispatch
the outer environment asks for; a run that cannot be portable in its process goes to a fresh one;
a bad value is a clear error naming the key."""

import os
import subprocess
import sys

import pytest
import torch
import yaml

from helpers import STOCK, assert_clean_failure, fixed_search
from seqbench import numerics
from seqbench.config import parse_params
from seqbench.errors import ConfigError
from seqbench.training.runs import train_run

# What an outer environment may ask of torch, oneDNN and MKL: AVX2 code where this CPU has
# AVX-512 (or where the libraries would pick something else by themselves).
ASKED = {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2", "MKL_CBWR": "AVX2"}
CELLS = ("lstm", "gru")  # oneDNN's LSTM, the fused GRU's kernel, and MKL's matmuls in both


def set_numerics(project, mode: str) -> None:
    path = project.root / "params.yaml"
    params = yaml.safe_load(path.read_text())
    # Wide enough that vector widths matter: a natively trained run then differs by CPU dispatch.
    params["train"].update(numerics=mode, hidden_size=24, batch_size=32, max_epochs=2, patience=2)
    path.write_text(yaml.safe_dump(params))
    fixed_search(project)


def weights(project) -> dict[str, bytes]:
    """Every run's weights after its last epoch (its last checkpoint: model.pt may hold the
    untrained model, which no kernel computed) as {cell/tensor: bytes}; the run folders are
    removed after, so that the next training starts afresh."""
    import shutil

    runs = project.root / "models" / "toy" / "runs"
    found = {}
    for cell in CELLS:
        state = torch.load(runs / cell / "seed0" / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]
        found.update({f"{cell}/{key}": tensor.numpy().tobytes() for key, tensor in state.items()})
    shutil.rmtree(runs)
    return found


def train_in_subprocess(project, asked: dict) -> dict[str, bytes]:
    """Both cells' seed-0 runs in a fresh process whose environment asks for `asked`."""
    env = {key: value for key, value in os.environ.items() if key not in ASKED and key != numerics.OUTER}
    code = (
        "import sys; from seqbench.training.runs import train_run\n"
        "for cell in sys.argv[2:]: train_run('toy', cell, 0, sys.argv[1])"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(project.root / "params.yaml"), *CELLS],
        env={**env, **asked},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return weights(project)


def test_portable_weights_are_the_same_whatever_the_outer_environment_asks_for(prepared_stock):
    set_numerics(prepared_stock, "portable")
    asked = train_in_subprocess(prepared_stock, ASKED)
    plain = train_in_subprocess(prepared_stock, {})
    assert asked == plain  # bit for bit, every tensor of both cells

    # This process has computed natively (its capability is fixed): the portable run goes to a
    # fresh process, and gives the same weights again.
    torch.ones(4).add_(1)
    for cell in CELLS:
        train_run("toy", cell, 0, prepared_stock.root / "params.yaml")
    assert weights(prepared_stock) == plain

    # Natively the same two environments give different weights (where the CPU has more than
    # AVX2 to offer), so the above shows something.
    if torch.backends.cpu.get_cpu_capability() == "AVX512":
        set_numerics(prepared_stock, "native")
        native_asked, native_plain = train_in_subprocess(prepared_stock, ASKED), train_in_subprocess(prepared_stock, {})
        differing = {key.split("/")[0] for key in native_plain if native_asked[key] != native_plain[key]}
        assert differing == set(CELLS)  # oneDNN's LSTM and MKL's matmuls in the GRU, here


def test_a_portable_call_in_a_process_that_computed_natively_runs_in_a_fresh_one():
    torch.ones(4).add_(1)  # this process's dispatch is fixed now
    if numerics.current() == "portable":
        pytest.skip("this test process was set up as portable by an earlier test")
    assert numerics.in_mode("portable", torch.backends.cpu.get_cpu_capability) == "DEFAULT"
    assert numerics.in_mode("portable", numerics.current) == "portable"
    assert numerics.current() == "native"  # this process is unchanged ...
    assert os.environ.get("ATEN_CPU_CAPABILITY") != "default"  # ... and so is its environment
    with pytest.raises(ConfigError, match="train.numerics"):  # the fresh process's error comes back
        numerics.in_mode("portable", numerics.enter, "fast")


@pytest.mark.parametrize("value", ["fast", 1, None])
def test_an_unknown_numerics_value_names_the_key(value):
    with pytest.raises(ConfigError, match="train.numerics"):
        parse_params({"datasets": {"x": {**STOCK}}, "train": {"numerics": value}})


def test_numerics_is_global_only():
    with pytest.raises(ConfigError, match="datasets.x.train.numerics: unknown key"):
        parse_params({"datasets": {"x": {**STOCK, "train": {"numerics": "portable"}}}})


def test_an_unknown_numerics_value_fails_the_command_cleanly(project):
    project.params({"toy": {**STOCK}})
    params = yaml.safe_load((project.root / "params.yaml").read_text())
    params["train"] = {"numerics": "fast"}
    (project.root / "params.yaml").write_text(yaml.safe_dump(params))
    assert_clean_failure(project.run("ingest", "toy"), "train.numerics")
