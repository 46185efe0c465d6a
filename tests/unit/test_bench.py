"""bench/train.py compares like with like: its bare loop trains exactly as the Trainer does."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench" / "train.py"


@pytest.fixture
def bench():
    spec = importlib.util.spec_from_file_location("bench_train", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_bare_loop_in_turns_ends_with_the_trainers_weights(bench):
    # 600 windows are 5 batches: turns after batches 2 and 4, and a short one after the last.
    lightning_seconds, bare_seconds = bench.lightning_and_bare_seconds(windows=600, epochs=2, chunk=2)
    assert lightning_seconds > 0 and bare_seconds > 0


def test_a_bare_loop_that_trains_differently_is_caught(bench, monkeypatch):
    def without_zero_grad(model, optimizer, batches):  # gradients pile up across steps
        for batch in batches:
            model.loss(batch)[0].backward()
            optimizer.step()

    monkeypatch.setattr(bench, "bare_steps", without_zero_grad)
    with pytest.raises(RuntimeError, match="not like for like"):
        bench.lightning_and_bare_seconds(windows=600, epochs=2, chunk=2)
