"""The equation-by-equation cells equal torch's fused LSTM and GRU."""

import pytest
import torch

from seqbench.models.cells import GRUCell, LSTMCell, unroll

STEPS, BATCH, INPUT, HIDDEN = 60, 4, 5, 7


@pytest.mark.parametrize("seed", [0, 1])
def test_lstm_cell_matches_torch(seed):
    torch.manual_seed(seed)
    reference = torch.nn.LSTM(INPUT, HIDDEN, batch_first=True).double()
    x = torch.randn(BATCH, STEPS, INPUT, dtype=torch.double)
    h0 = torch.randn(1, BATCH, HIDDEN, dtype=torch.double)
    c0 = torch.randn(1, BATCH, HIDDEN, dtype=torch.double)
    expected, (h_n, c_n) = reference(x, (h0, c0))

    cell = LSTMCell(INPUT, HIDDEN).double().copy_from(reference)
    outputs, (h, c) = unroll(cell, x, (h0[0], c0[0]))

    torch.testing.assert_close(outputs, expected, atol=1e-5, rtol=0)
    torch.testing.assert_close(h, h_n[0], atol=1e-5, rtol=0)
    torch.testing.assert_close(c, c_n[0], atol=1e-5, rtol=0)


@pytest.mark.parametrize("seed", [0, 1])
def test_gru_cell_matches_torch(seed):
    torch.manual_seed(seed)
    reference = torch.nn.GRU(INPUT, HIDDEN, batch_first=True)
    x = torch.randn(BATCH, STEPS, INPUT)
    expected, h_n = reference(x)

    cell = GRUCell(INPUT, HIDDEN).copy_from(reference)
    outputs, h = unroll(cell, x)

    torch.testing.assert_close(outputs, expected, atol=1e-5, rtol=0)
    torch.testing.assert_close(h, h_n[0], atol=1e-5, rtol=0)


def test_each_gate_has_its_own_weights():
    cell = LSTMCell(INPUT, HIDDEN)
    names = {n for n, _ in cell.named_parameters()}
    assert {f"W_i{g}" for g in "ifgo"} | {f"W_h{g}" for g in "ifgo"} <= names
    assert len({p.data_ptr() for p in cell.parameters()}) == 16


def test_a_wrong_gate_order_would_be_caught():
    """The comparison is sharp: swapping two gates' weights breaks equality."""
    torch.manual_seed(0)
    reference = torch.nn.GRU(INPUT, HIDDEN, batch_first=True)
    x = torch.randn(BATCH, STEPS, INPUT)
    expected, _ = reference(x)
    cell = GRUCell(INPUT, HIDDEN).copy_from(reference)
    with torch.no_grad():
        cell.W_ir, cell.W_iz = cell.W_iz, cell.W_ir
    outputs, _ = unroll(cell, x)
    assert (outputs - expected).abs().max() > 1e-3
