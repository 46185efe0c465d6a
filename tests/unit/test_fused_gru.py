"""seqbench's fused CPU GRU (models/fused_gru.py) computes what torch's nn.GRU computes: outputs,
final states and gradients, on random shapes, stacked and bidirectional layers and packed
variable-length input; float64 gradients checked numerically; state dicts load either way."""

import pytest
import torch
from torch.nn.utils.rnn import pack_padded_sequence

from seqbench.models import fused_gru
from seqbench.models.fused_gru import FusedGRU

# (input, hidden, layers, bidirectional, batch, steps): one layer, stacked, bidirectional, odd
# sizes that are no multiple of a vector width.
SHAPES = [(1, 5, 1, False, 3, 20), (4, 13, 2, False, 5, 9), (3, 8, 2, True, 4, 11), (2, 33, 3, True, 2, 6)]


def test_the_kernel_builds_here():
    # The project's tests need g++ and ninja (`make install` brings ninja): without them every
    # test below would pass through nn.GRU and test nothing.
    assert fused_gru.kernel_available(), "the fused GRU did not build: see the warning above"


def twins(input_size, hidden, layers, bidirectional, seed=0):
    """An nn.GRU and a FusedGRU with the same weights."""
    torch.manual_seed(seed)
    reference = torch.nn.GRU(input_size, hidden, layers, batch_first=True, bidirectional=bidirectional)
    fused = FusedGRU(input_size, hidden, layers, batch_first=True, bidirectional=bidirectional)
    fused.load_state_dict(reference.state_dict())
    return reference, fused


def outputs_and_gradients(rnn, x, h0, pack_lengths=None):
    """Output, h_n and the gradients of x, h0 and every parameter of a loss over both."""
    x, h0 = x.clone().requires_grad_(), h0.clone().requires_grad_()
    rnn.zero_grad()
    if pack_lengths is None:
        out, h_n = rnn(x, h0)
    else:
        packed, h_n = rnn(pack_padded_sequence(x, pack_lengths, batch_first=True, enforce_sorted=False), h0)
        out = packed.data
    # A loss that weighs every output and final state differently, so no gradient is trivial.
    loss = (out * torch.linspace(-1, 1, out.numel()).view_as(out)).sum() + (h_n**2).sum()
    loss.backward()
    return out.detach(), h_n.detach(), [x.grad, h0.grad] + [p.grad for p in rnn.parameters()]


def assert_same(reference, fused, x, h0, pack_lengths=None):
    out_ref, h_ref, grads_ref = outputs_and_gradients(reference, x, h0, pack_lengths)
    out, h_n, grads = outputs_and_gradients(fused, x, h0, pack_lengths)
    torch.testing.assert_close(out, out_ref, atol=1e-5, rtol=0)
    torch.testing.assert_close(h_n, h_ref, atol=1e-5, rtol=0)
    for found, expected in zip(grads, grads_ref, strict=True):
        # Relative to the gradient's own size: 1e-4 of its largest entry.
        scale = expected.abs().max().clamp_min(1e-6)
        assert ((found - expected).abs().max() / scale).item() < 1e-4


@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_equals_torch_gru_on_full_length_sequences(shape):
    input_size, hidden, layers, bidirectional, batch, steps = shape
    reference, fused = twins(input_size, hidden, layers, bidirectional)
    torch.manual_seed(1)
    x = torch.randn(batch, steps, input_size)
    h0 = torch.randn(layers * (2 if bidirectional else 1), batch, hidden)
    assert_same(reference, fused, x, h0)


@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_equals_torch_gru_on_packed_variable_length_sequences(shape):
    input_size, hidden, layers, bidirectional, batch, steps = shape
    reference, fused = twins(input_size, hidden, layers, bidirectional, seed=2)
    torch.manual_seed(3)
    x = torch.randn(batch, steps, input_size)
    h0 = torch.randn(layers * (2 if bidirectional else 1), batch, hidden)
    lengths = torch.randint(1, steps + 1, (batch,))
    lengths[0] = steps  # the longest sequence sets the padded length
    assert_same(reference, fused, x, h0, lengths)


def test_without_an_initial_state_and_time_major_input():
    torch.manual_seed(4)
    reference = torch.nn.GRU(3, 6, 2)
    fused = FusedGRU(3, 6, 2)
    fused.load_state_dict(reference.state_dict())
    x = torch.randn(7, 2, 3)  # [steps, batch, input]
    (out_ref, h_ref), (out, h_n) = reference(x), fused(x)
    torch.testing.assert_close(out, out_ref, atol=1e-5, rtol=0)
    torch.testing.assert_close(h_n, h_ref, atol=1e-5, rtol=0)


@pytest.mark.parametrize("reverse", [False, True])
def test_gradcheck_in_float64(reverse):
    torch.manual_seed(5)
    steps, batch, hidden = 4, 3, 2
    gi = torch.randn(steps, batch, 3 * hidden, dtype=torch.double, requires_grad=True)
    h0 = torch.randn(batch, hidden, dtype=torch.double, requires_grad=True)
    w_hh = torch.randn(3 * hidden, hidden, dtype=torch.double, requires_grad=True)
    b_hh = torch.randn(3 * hidden, dtype=torch.double, requires_grad=True)
    lengths = torch.tensor([4, 2, 1])  # padded steps included

    def layer(gi, h0, w_hh, b_hh):
        return fused_gru._GRULayer.apply(gi, h0, w_hh, b_hh, lengths, reverse)

    assert torch.autograd.gradcheck(layer, (gi, h0, w_hh, b_hh))


def test_gradcheck_of_a_stacked_bidirectional_layer_with_packed_input():
    torch.manual_seed(6)
    fused = FusedGRU(2, 3, 2, batch_first=True, bidirectional=True).double()
    x = torch.randn(3, 5, 2, dtype=torch.double, requires_grad=True)
    lengths = torch.tensor([3, 5, 2])

    def run(x):
        out, h_n = fused(pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False))
        return out.data, h_n

    assert torch.autograd.gradcheck(run, (x,))


def test_padded_steps_output_zero_and_keep_the_state():
    torch.manual_seed(7)
    fused = FusedGRU(2, 4, batch_first=True)
    x = torch.randn(2, 6, 2)
    packed, h_n = fused(pack_padded_sequence(x, torch.tensor([6, 3]), batch_first=True, enforce_sorted=False))
    alone, h_alone = fused(x[1:, :3])  # the short sequence on its own, unpadded
    torch.testing.assert_close(h_n[0, 1], h_alone[0, 0], atol=1e-6, rtol=0)
    unpacked, _ = torch.nn.utils.rnn.pad_packed_sequence(packed, batch_first=True)
    torch.testing.assert_close(unpacked[1, :3], alone[0], atol=1e-6, rtol=0)
    assert unpacked[1, 3:].abs().max() == 0


def test_state_dicts_load_either_way():
    torch.manual_seed(8)
    x = torch.randn(3, 10, 4)
    fused = FusedGRU(4, 9, 2, batch_first=True, dropout=0.2)
    into_torch = torch.nn.GRU(4, 9, 2, batch_first=True, dropout=0.2)
    into_torch.load_state_dict(fused.state_dict())
    torch.testing.assert_close(into_torch.eval()(x)[0], fused.eval()(x)[0], atol=1e-5, rtol=0)
    into_fused = FusedGRU(4, 9, 2, batch_first=True, dropout=0.2)
    into_fused.load_state_dict(into_torch.state_dict())
    assert list(into_fused.state_dict()) == list(into_torch.state_dict())
    torch.testing.assert_close(into_fused.eval()(x)[0], into_torch(x)[0], atol=1e-5, rtol=0)


def test_training_is_deterministic_for_a_fixed_seed():
    def train_once():
        torch.manual_seed(9)
        fused = FusedGRU(3, 7, 2, batch_first=True, dropout=0.3, bidirectional=True)
        optimiser = torch.optim.AdamW(fused.parameters(), lr=0.01)
        x = torch.randn(4, 12, 3)
        for _ in range(3):
            optimiser.zero_grad()
            out, _ = fused(x)
            out.square().mean().backward()
            optimiser.step()
        return torch.cat([p.detach().flatten() for p in fused.parameters()])

    assert torch.equal(train_once(), train_once())


def test_a_failed_build_warns_once_and_falls_back_to_torch(monkeypatch):
    import torch.utils.cpp_extension

    def no_compiler(**_):
        raise RuntimeError("Ninja is required to load C++ extensions")

    monkeypatch.setattr(torch.utils.cpp_extension, "load", no_compiler)
    fused_gru.kernel_available.cache_clear()
    try:
        with pytest.warns(RuntimeWarning, match="could not be built.*Ninja is required") as caught:
            assert fused_gru.kernel_available() is False
            assert fused_gru.kernel_available() is False  # cached: no second warning
        assert len(caught) == 1
        torch.manual_seed(10)
        reference = torch.nn.GRU(2, 3, batch_first=True)
        fused = FusedGRU(2, 3, batch_first=True)
        fused.load_state_dict(reference.state_dict())
        x = torch.randn(2, 4, 2)
        torch.testing.assert_close(fused(x)[0], reference(x)[0])  # torch's own forward, same numbers
    finally:
        fused_gru.kernel_available.cache_clear()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU (none here: the CPU path is tested above)")
def test_on_a_gpu_cudnn_runs_the_gru():
    from seqbench.training.cost import CUDNN, observed_kernel

    fused = FusedGRU(3, 8, 2, batch_first=True).cuda()
    x = torch.randn(4, 6, 3, device="cuda")
    with torch.no_grad():
        assert observed_kernel(lambda: fused(x))["name"] == CUDNN
