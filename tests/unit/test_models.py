"""The models: shapes, and padded batches give exactly what packed sequences give."""

import pytest
import torch

from seqbench.models.classifier import Classifier
from seqbench.models.forecaster import Forecaster


@pytest.mark.parametrize("cell", ["lstm", "gru"])
@pytest.mark.parametrize("pooling", ["last", "mean"])
def test_padded_path_equals_packed_path(cell, pooling):
    torch.manual_seed(0)
    model = Classifier(num_classes=3, cell=cell, hidden_size=8, layers=2, pooling=pooling, input_size=4).eval()
    x = torch.randn(5, 12, 4)
    lengths = torch.tensor([12, 3, 7, 1, 9])
    x[torch.arange(12)[None, :] >= lengths[:, None]] = 99.0  # padding must not matter
    encoded = model.encode(x)
    torch.testing.assert_close(model._padded(encoded, lengths), model._packed(encoded, lengths))


def test_bidirectional_classifier_ignores_padding():
    torch.manual_seed(0)
    model = Classifier(num_classes=2, cell="gru", hidden_size=6, bidirectional=True, vocab_size=20).eval()
    short = torch.tensor([[3, 4, 5]])
    padded = torch.tensor([[3, 4, 5, 0, 0, 0]])
    torch.testing.assert_close(model(short, torch.tensor([3])), model(padded, torch.tensor([3])))


def test_forecaster_starts_as_the_constant_forecast():
    model = Forecaster(input_size=3, cell="gru", hidden_size=5)
    assert torch.all(model(torch.randn(7, 10, 3)) == 0)


def test_each_model_batches_and_predicts_its_own_way():
    """Callers batch with model.collate_fn and call model.predict_step: forecasts [N] from
    windows, class probabilities [N, classes] from sequences of different lengths."""
    from torch.utils.data import DataLoader

    from seqbench.batching import RaggedDataset, WindowDataset

    torch.manual_seed(0)
    forecaster = Forecaster(input_size=3, hidden_size=4).eval()
    windows = WindowDataset(torch.randn(20, 3).numpy(), torch.zeros(20).numpy(), list(range(4, 20)), lookback=5)
    batch = next(iter(DataLoader(windows, batch_size=6, collate_fn=forecaster.collate_fn)))
    assert forecaster.predict_step(batch).shape == (6,)
    torch.testing.assert_close(forecaster.predict_step(batch), forecaster(*forecaster.inputs(batch)))

    classifier = Classifier(num_classes=3, hidden_size=4, input_size=2).eval()
    offsets = torch.tensor([0, 3, 4, 9]).numpy()
    sequences = RaggedDataset(torch.randn(9, 2).numpy(), offsets, torch.tensor([0, 2, 1]).numpy(), [0, 1, 2])
    batch = next(iter(DataLoader(sequences, batch_size=3, collate_fn=classifier.collate_fn)))
    probabilities = classifier.predict_step(batch)
    assert probabilities.shape == (3, 3)
    torch.testing.assert_close(probabilities.sum(dim=1), torch.ones(3))
    torch.testing.assert_close(probabilities, torch.softmax(classifier(*classifier.inputs(batch)), dim=-1))


STOCK_META = {"task": "forecast", "input_size": 4}
TEXT_META = {
    "task": "classify",
    "input": "tokens",
    "vocabulary": ["<pad>", "<unk>", *map(str, range(998))],
    "labels": ["a", "b"],
}
VIDEO_META = {"task": "classify", "input": "features", "input_size": 1, "labels": ["1", "2"]}


@pytest.mark.parametrize("meta", [STOCK_META, TEXT_META, VIDEO_META], ids=["stock", "text", "video"])
@pytest.mark.parametrize("layers", [1, 2])
def test_a_parameter_budget_gives_both_cells_equal_counts(meta, layers):
    from seqbench.config import Budget
    from seqbench.models import build_model

    budget = Budget(param_budget=20_000, layers=layers, embedding_size=16)
    counts = {}
    for cell in ("lstm", "gru"):
        model = build_model(meta, cell, budget)
        counts[cell] = model.sized_parameters()
        bigger = Budget(
            size_match="hidden", hidden_size=model.hparams.hidden_size + 1, layers=layers, embedding_size=16
        )
        assert counts[cell] <= 20_000 < build_model(meta, cell, bigger).sized_parameters()  # the largest that fits
    assert abs(counts["lstm"] - counts["gru"]) / 20_000 < 0.05  # within one hidden unit's worth
    # the GRU, with three gates to the LSTM's four, gets the larger hidden size
    hidden = {cell: build_model(meta, cell, budget).hparams.hidden_size for cell in counts}
    assert hidden["gru"] > hidden["lstm"]


def test_token_embeddings_do_not_count_against_the_budget():
    from seqbench.config import Budget
    from seqbench.models import build_model

    model = build_model(TEXT_META, "lstm", Budget(param_budget=5000, embedding_size=16))
    assert model.trainable_parameters() - model.sized_parameters() == 1000 * 16


def test_a_budget_below_the_smallest_model_is_a_clear_error():
    from seqbench.config import Budget
    from seqbench.errors import ConfigError
    from seqbench.models import build_model

    with pytest.raises(ConfigError, match="param_budget: 5 parameters is below the smallest gru model"):
        build_model(STOCK_META, "gru", Budget(param_budget=5))


def test_forget_bias_sets_the_lstm_forget_gate():
    from seqbench.models.base import make_rnn

    rnn = make_rnn("lstm", 3, 4, layers=2, dropout=0.0, forget_bias=1.0)
    for layer in range(2):
        total = getattr(rnn, f"bias_ih_l{layer}") + getattr(rnn, f"bias_hh_l{layer}")
        assert torch.all(total[4:8] == 1.0)  # gate order i, f, g, o
        assert not torch.all(total[:4] == 0)  # the other gates keep torch's initialisation


@pytest.mark.parametrize("schedule", ["constant", "cosine"])
def test_the_learning_rate_schedule_is_the_one_configured(schedule):
    """cosine: the rate falls along a half cosine over max_epochs (epoch e of E starts at
    lr * (1 + cos(pi e / E)) / 2); constant: it stays."""
    import math

    import lightning.pytorch as pl

    from seqbench.batching import WindowDataset

    torch.manual_seed(0)
    features, target = torch.randn(40, 2).numpy(), torch.randn(40).numpy()
    data = WindowDataset(features, target, list(range(4, 39)), 5)
    model = Forecaster(input_size=2, cell="gru", hidden_size=4, learning_rate=0.01, lr_schedule=schedule)
    seen = []

    class Record(pl.Callback):
        def on_train_epoch_start(self, trainer, module):
            seen.append(trainer.optimizers[0].param_groups[0]["lr"])

    trainer = pl.Trainer(
        max_epochs=4,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[Record()],
    )
    trainer.fit(model, torch.utils.data.DataLoader(data, batch_size=16))
    if schedule == "constant":
        assert seen == [0.01] * 4
    else:
        assert seen == pytest.approx([0.01 * (1 + math.cos(math.pi * e / 4)) / 2 for e in range(4)])
