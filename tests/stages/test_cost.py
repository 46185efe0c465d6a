"""The cost table's split between the cell and the library: the cell's multiply-adds from its
shapes (checked against counts worked out by hand), and the kernel torch actually ran (read from
the aten ops a forward pass dispatched, for LSTM vs GRU, packed vs not, oneDNN on and off)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from seqbench.batching import RaggedDataset, WindowDataset, collate_ragged
from seqbench.models import fused_gru
from seqbench.models.classifier import Classifier
from seqbench.models.forecaster import Forecaster
from seqbench.training import cost as cost
from seqbench.training.cost import CUDNN, ONEDNN, SEQBENCH_GRU, STEP_LOOP

needs_onednn = pytest.mark.skipif(not torch.backends.mkldnn.is_available(), reason="torch built without oneDNN")


def forecaster(cell: str, **kw) -> Forecaster:
    torch.manual_seed(0)
    return Forecaster(input_size=3, cell=cell, **kw).eval()


def classifier(cell: str, **kw) -> Classifier:
    torch.manual_seed(0)
    return Classifier(num_classes=2, cell=cell, input_size=3, **kw).eval()


def windows(n: int = 40, lookback: int = 5) -> WindowDataset:
    rng = np.random.default_rng(0)
    rows = n + lookback
    return WindowDataset(rng.normal(size=(rows, 3)), rng.normal(size=rows), np.arange(lookback - 1, rows - 1), lookback)


def ragged(lengths=(6, 5, 3, 2, 6, 4)) -> RaggedDataset:
    rng = np.random.default_rng(0)
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    labels = np.arange(len(lengths)) % 2
    return RaggedDataset(rng.normal(size=(offsets[-1], 3)), offsets, labels, np.arange(len(lengths)))


def recurrent_weights(model) -> int:
    """An independent count: every recurrent weight is used once per step (one multiply-add)."""
    return sum(p.numel() for name, p in model.rnn.named_parameters() if name.startswith("weight_"))


# ---- multiply-adds --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cell", "expected"),
    [
        # input 3, hidden 2, two layers. LSTM: 4*2*(3+2) + 4*2*(2+2) = 40 + 32; GRU: 3*2*5 + 3*2*4.
        ("lstm", 72),
        ("gru", 54),
    ],
)
def test_multiply_adds_per_step_of_a_two_layer_forecaster_by_hand(cell, expected):
    model = forecaster(cell, hidden_size=2, layers=2)
    assert cost.multiply_adds_per_step(model) == expected == recurrent_weights(model)


@pytest.mark.parametrize(
    ("cell", "expected"),
    [
        # The feature classifier projects its input to H first, so layer 0 reads width H = 2.
        # Both directions: 2 * 4*2*(2+2) = 64; layer 1 reads both directions' 2H = 4: 2 * 4*2*(4+2) = 96.
        ("lstm", 64 + 96),
        ("gru", 48 + 72),  # 2 * 3*2*(2+2), 2 * 3*2*(4+2)
    ],
)
def test_multiply_adds_count_both_directions_and_the_wider_upper_layer(cell, expected):
    model = classifier(cell, hidden_size=2, layers=2, bidirectional=True)
    assert cost.multiply_adds_per_step(model) == expected == recurrent_weights(model)


def test_multiply_adds_read_the_embedding_width_not_the_table():
    model = Classifier(num_classes=2, cell="lstm", hidden_size=2, vocab_size=100, embedding_size=5)
    assert cost.multiply_adds_per_step(model) == 4 * 2 * (5 + 2)  # the 100-word table is a lookup


def test_per_sequence_uses_the_lookback_or_the_mean_prepared_length():
    model = forecaster("lstm", hidden_size=2, layers=2)
    stock = cost.cell_multiply_adds(model, {"features": np.zeros((9, 3))}, {"lookback": 30})
    assert stock["per_step"] == 72 and stock["per_sequence"] == 72 * 30
    assert stock["sequence_length"] == 30 and stock["sequence_length_from"] == "lookback"
    clips = cost.cell_multiply_adds(model, {"offsets": np.array([0, 2, 6, 9])}, {})  # lengths 2, 4, 3
    assert clips["sequence_length"] == 3.0 and clips["per_sequence"] == 72 * 3
    assert clips["sequence_length_from"] == "mean length of the prepared sequences"
    assert cost.cell_multiply_adds(model, {}, {})["per_sequence"] is None


# ---- the kernel that did the work ------------------------------------------------------------


def forecast_kernel(model) -> dict:
    x = torch.randn(4, 5, 3)
    with torch.no_grad():
        return cost.observed_kernel(lambda: model(x))


def classify_kernel(model, lengths) -> dict:
    batch = collate_ragged([ragged(lengths)[i] for i in range(len(lengths))])
    with torch.no_grad():
        return cost.observed_kernel(lambda: model(batch[0], batch[1]))


@needs_onednn
def test_on_a_cpu_the_lstm_runs_fused_through_onednn_and_the_gru_through_seqbench_kernel():
    assert forecast_kernel(forecaster("lstm")) == {"name": ONEDNN, "packed": False}
    assert forecast_kernel(forecaster("gru")) == {"name": SEQBENCH_GRU, "packed": False}


def test_without_the_built_kernel_the_gru_runs_and_is_named_step_by_step(monkeypatch):
    monkeypatch.setattr(fused_gru, "kernel_available", lambda: False)
    assert forecast_kernel(forecaster("gru")) == {"name": STEP_LOOP, "packed": False}


@needs_onednn
@pytest.mark.filterwarnings("ignore:TF32 acceleration")  # torch's note on toggling oneDNN
def test_the_kernel_is_observed_not_looked_up_by_the_cells_name():
    with torch.backends.mkldnn.flags(enabled=False):
        assert forecast_kernel(forecaster("lstm"))["name"] == STEP_LOOP


@needs_onednn
def test_a_packed_bidirectional_classifier_takes_the_loop_for_the_lstm_only():
    ragged_lengths = (6, 5, 3, 2)
    # Unidirectional on a CPU: the classifier runs the padded batch, unpacked, so the LSTM fuses.
    assert classify_kernel(classifier("lstm"), ragged_lengths) == {"name": ONEDNN, "packed": False}
    assert classify_kernel(classifier("gru"), ragged_lengths) == {"name": SEQBENCH_GRU, "packed": False}
    # Bidirectional: packed; sequences of different lengths go step by step in torch's LSTM,
    # while seqbench's GRU kernel takes packed input as it is.
    kernel = classify_kernel(classifier("lstm", bidirectional=True), ragged_lengths)
    assert kernel == {"name": STEP_LOOP, "packed": True}
    kernel = classify_kernel(classifier("gru", bidirectional=True), ragged_lengths)
    assert kernel == {"name": SEQBENCH_GRU, "packed": True}


@needs_onednn
def test_training_kernel_is_observed_on_a_training_step_and_leaves_the_model_as_it_was():
    model = forecaster("lstm")
    found = cost.training_kernel(model, windows(), batch_size=8, device="cpu")
    assert found == {"name": ONEDNN, "packed": False, "device": "cpu", "observed": True}
    assert not model.training and next(model.parameters()).device.type == "cpu"
    model = classifier("lstm", bidirectional=True)
    found = cost.training_kernel(model, ragged(), batch_size=4, device="cpu")
    assert found["name"] == STEP_LOOP and found["packed"] is True
    found = cost.training_kernel(classifier("gru", bidirectional=True), ragged(), batch_size=4, device="cpu")
    assert found["name"] == SEQBENCH_GRU and found["packed"] is True


@pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU here is observed, not assumed")
def test_a_gpu_run_evaluated_without_a_gpu_names_cudnn_unobserved():
    found = cost.training_kernel(forecaster("gru"), windows(), batch_size=8, device="cuda:0")
    assert found == {"name": CUDNN, "packed": None, "device": "cuda:0", "observed": False}


@needs_onednn
def test_latency_names_the_kernel_of_each_timed_batch(monkeypatch):
    monkeypatch.setattr(cost, "REPEATS", 2)
    latency = cost.inference_latency(classifier("lstm", bidirectional=True), ragged())
    assert latency["batch_256"]["batch"] == 6
    assert latency["batch_256"]["kernel"] == STEP_LOOP and latency["batch_256"]["packed"] is True
    assert latency["batch_1"]["packed"] is True and latency["batch_1"]["seconds_per_sample"] > 0
    latency = cost.inference_latency(forecaster("lstm"), windows())
    assert {entry["kernel"] for entry in latency.values()} == {ONEDNN}


# ---- what evaluate writes ---------------------------------------------------------------------


def fake_run(folder, cell: str, hidden: int) -> None:
    """A finished run folder as training leaves it: config, weights, metrics."""
    torch.manual_seed(0)
    hparams = {"input_size": 3, "cell": cell, "hidden_size": hidden, "layers": 1}
    folder.mkdir(parents=True)
    torch.save(Forecaster(**hparams).state_dict(), folder / "model.pt")
    (folder / "config.json").write_text(
        json.dumps({"model": {"class": "Forecaster", "hparams": hparams}, "budget": {"batch_size": 8}})
    )
    (folder / "metrics.json").write_text(
        json.dumps(
            {
                "trainable_parameters": 1,
                "checkpoint_bytes": 1,
                "device": "cpu",
                "threads": 1,
                "epochs_run": 3,
                "best_epoch": 2,
                "seconds_to_best": 1.0,
                "train_seconds": 1.5,
                "train_samples_per_second": 100.0,
            }
        )
    )


@needs_onednn
def test_costs_write_the_kernel_and_multiply_adds_per_cell(tmp_path, monkeypatch):
    from seqbench.stages.evaluate import costs

    monkeypatch.setattr(cost, "REPEATS", 2)
    monkeypatch.setattr(cost, "peak_training_memory", lambda *a: {"peak_bytes": None, "measure": "skipped"})
    hidden = {"lstm": 4, "gru": 5}
    runs = {(cell, 0): tmp_path / cell for cell in hidden}
    for cell, size in hidden.items():
        fake_run(runs[(cell, 0)], cell, size)
    data = windows(n=30, lookback=5)
    arrays = {
        "features": data.features.numpy(),
        "target": data.target.numpy(),
        **{f"ends_{split}": data.ends[i * 10 : (i + 1) * 10] for i, split in enumerate(("train", "val", "test"))},
    }
    meta = {"task": "forecast", "lookback": 5}
    found = costs(runs, arrays, meta, tmp_path, list(hidden), [0])
    # Per step: LSTM 4*4*(3+4) = 112, GRU 3*5*(3+5) = 120; per window of 5 steps, five times that.
    assert found["lstm"]["multiply_adds"]["per_step"] == 112 and found["lstm"]["multiply_adds"]["per_sequence"] == 560
    assert found["gru"]["multiply_adds"]["per_step"] == 120 and found["gru"]["multiply_adds"]["per_sequence"] == 600
    assert found["lstm"]["kernel"]["name"] == ONEDNN and found["gru"]["kernel"]["name"] == SEQBENCH_GRU
    assert found["lstm"]["latency"]["batch_1"]["kernel"] == ONEDNN
    assert found["gru"]["latency"]["batch_256"]["kernel"] == SEQBENCH_GRU
    assert found["gru"]["latency"]["batch_256"]["seconds_per_sample"] > 0  # the measured times stay


# ---- what the report shows --------------------------------------------------------------------


def test_report_labels_kernels_per_batch_when_they_differ_and_unobserved_ones_as_expected():
    from seqbench.stages.report.sections import cost_work

    latency = {"batch_1": {"kernel": ONEDNN, "batch": 1}, "batch_256": {"kernel": STEP_LOOP, "batch": 256}}
    result = {
        "cost": {
            "lstm": {
                "multiply_adds": {
                    "per_step": 10,
                    "per_sequence": 50,
                    "sequence_length": 5.0,
                    "sequence_length_from": "lookback",
                },
                "kernel": {"name": CUDNN, "packed": True, "device": "cuda:0", "observed": False},
                "latency": latency,
            },
            "gru": {
                "multiply_adds": {"per_step": 9, "per_sequence": 45},
                "kernel": {"name": CUDNN, "packed": True, "device": "cuda:0", "observed": True},
                "latency": {"batch_1": {"kernel": STEP_LOOP, "batch": 1}},
            },
        }
    }
    work = cost_work(result)
    assert work["cells"]["lstm"]["inference_kernel"] == f"batch 1: {ONEDNN}; batch 256: {STEP_LOOP}"
    assert work["cells"]["gru"]["inference_kernel"] == STEP_LOOP
    assert work["cells"]["lstm"]["training_kernel"] == f"{CUDNN}, packed (expected: not observed here)"
    assert work["cells"]["gru"]["training_kernel"] == f"{CUDNN}, packed"
    assert not work["kernels_differ"] and work["sequence_length"] == 5.0
    # An evaluation written before these keys existed still renders, with dashes.
    old = cost_work({"cost": {"lstm": {"latency": {"batch_1": {"seconds_per_sample": 1e-4, "batch": 1}}}}})
    assert old["cells"]["lstm"] == {
        "per_step": None,
        "per_sequence": None,
        "training_kernel": None,
        "inference_kernel": None,
    }
