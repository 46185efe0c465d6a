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
