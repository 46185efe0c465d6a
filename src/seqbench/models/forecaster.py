"""Forecaster: an RNN encoder over a window of features, then a linear head on the last step."""

from __future__ import annotations

import torch.nn.functional as F
from torch import nn

from seqbench.models.base import RNNModule, final_hidden, make_rnn


class Forecaster(RNNModule):
    def __init__(self, input_size: int, cell: str = "lstm", hidden_size: int = 32, layers: int = 1,
                 dropout: float = 0.0, learning_rate: float = 2e-3):
        super().__init__()
        self.save_hyperparameters()
        self.rnn = make_rnn(cell, input_size, hidden_size, layers, dropout)
        self.head = nn.Linear(hidden_size, 1)

    def forward(self, x):
        """x [batch, lookback, features] -> the scaled target [batch]."""
        _, state = self.rnn(x)
        return self.head(final_hidden(state, bidirectional=False)).squeeze(-1)

    def loss(self, batch):
        x, y = batch
        return F.mse_loss(self(x), y), len(y)
