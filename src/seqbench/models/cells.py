"""The LSTM and GRU cells written out from their equations, gate by gate.

These are for reading and for testing, not for training: the models use torch.nn.LSTM /
torch.nn.GRU, whose fused kernels compute the same thing much faster. A test copies a torch
layer's weights into these cells and checks that both give the same outputs and final states.

Every gate has its own input weights W_i*, hidden weights W_h* and biases (one W shared by all
gates, as some write-ups print, is a typo, not a model). PyTorch's gate order is used.

LSTM, for input x, hidden state h and cell state c:

    i  = σ(W_ii x + b_ii + W_hi h + b_hi)      input gate: how much of the candidate to write
    f  = σ(W_if x + b_if + W_hf h + b_hf)      forget gate: how much of the old cell to keep
    g  = tanh(W_ig x + b_ig + W_hg h + b_hg)   candidate cell content
    o  = σ(W_io x + b_io + W_ho h + b_ho)      output gate: how much of the cell to show
    c' = f ⊙ c + i ⊙ g
    h' = o ⊙ tanh(c')

GRU, for input x and hidden state h:

    r  = σ(W_ir x + b_ir + W_hr h + b_hr)           reset gate
    z  = σ(W_iz x + b_iz + W_hz h + b_hz)           update gate: how much of h to keep
    n  = tanh(W_in x + b_in + r ⊙ (W_hn h + b_hn))  candidate; the reset gate scales the
                                                    hidden part, bias b_hn included
    h' = (1 − z) ⊙ n + z ⊙ h

Cho et al. write h' = (1 − z) ⊙ h + z ⊙ ĥ: the same cell with z's meaning flipped.
"""

from __future__ import annotations

import torch
from torch import nn

LSTM_GATES = ("i", "f", "g", "o")
GRU_GATES = ("r", "z", "n")


class GatedCell(nn.Module):
    """Per-gate weights W_i<gate> [hidden, input], W_h<gate> [hidden, hidden] and biases."""

    GATES: tuple[str, ...] = ()

    def __init__(self, input_size: int, hidden_size: int):
        super().__init__()
        self.hidden_size = hidden_size
        for gate in self.GATES:
            self.register_parameter(f"W_i{gate}", nn.Parameter(torch.empty(hidden_size, input_size)))
            self.register_parameter(f"W_h{gate}", nn.Parameter(torch.empty(hidden_size, hidden_size)))
            self.register_parameter(f"b_i{gate}", nn.Parameter(torch.zeros(hidden_size)))
            self.register_parameter(f"b_h{gate}", nn.Parameter(torch.zeros(hidden_size)))
        for name, parameter in self.named_parameters():
            if name.startswith("W"):
                nn.init.uniform_(parameter, -(hidden_size**-0.5), hidden_size**-0.5)

    def gate_input(self, gate: str, x, h):
        """W_i<gate> x + b_i<gate>, and W_h<gate> h + b_h<gate>, kept apart (the GRU needs that)."""
        W_i, b_i = getattr(self, f"W_i{gate}"), getattr(self, f"b_i{gate}")
        W_h, b_h = getattr(self, f"W_h{gate}"), getattr(self, f"b_h{gate}")
        return x @ W_i.T + b_i, h @ W_h.T + b_h

    @torch.no_grad()
    def copy_from(self, rnn: nn.LSTM | nn.GRU, layer: int = 0) -> "GatedCell":
        """Take layer `layer` of a torch LSTM/GRU: its stacked weights are the gates in order."""
        stacked = {
            "W_i": getattr(rnn, f"weight_ih_l{layer}"),
            "W_h": getattr(rnn, f"weight_hh_l{layer}"),
            "b_i": getattr(rnn, f"bias_ih_l{layer}"),
            "b_h": getattr(rnn, f"bias_hh_l{layer}"),
        }
        for prefix, tensor in stacked.items():
            for gate, part in zip(self.GATES, tensor.chunk(len(self.GATES), dim=0)):
                getattr(self, f"{prefix}{gate}").copy_(part)
        return self


class LSTMCell(GatedCell):
    GATES = LSTM_GATES

    def forward(self, x, state):
        h, c = state
        sigmoid = torch.sigmoid
        i = sigmoid(sum(self.gate_input("i", x, h)))
        f = sigmoid(sum(self.gate_input("f", x, h)))
        g = torch.tanh(sum(self.gate_input("g", x, h)))
        o = sigmoid(sum(self.gate_input("o", x, h)))
        c = f * c + i * g
        h = o * torch.tanh(c)
        return h, (h, c)

    def initial_state(self, batch: int, like):
        zeros = like.new_zeros(batch, self.hidden_size)
        return zeros, zeros.clone()


class GRUCell(GatedCell):
    GATES = GRU_GATES

    def forward(self, x, h):
        r = torch.sigmoid(sum(self.gate_input("r", x, h)))
        z = torch.sigmoid(sum(self.gate_input("z", x, h)))
        n_input, n_hidden = self.gate_input("n", x, h)
        n = torch.tanh(n_input + r * n_hidden)
        h = (1 - z) * n + z * h
        return h, h

    def initial_state(self, batch: int, like):
        return like.new_zeros(batch, self.hidden_size)


def unroll(cell: GatedCell, x, state=None):
    """Run `cell` over x [batch, steps, input]; return (outputs [batch, steps, hidden], final state)."""
    if state is None:
        state = cell.initial_state(x.shape[0], x)
    outputs = []
    for t in range(x.shape[1]):
        h, state = cell(x[:, t], state)
        outputs.append(h)
    return torch.stack(outputs, dim=1), state
