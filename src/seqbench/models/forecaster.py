"""Forecaster: an RNN encoder over a window of features, then a linear head on the last step."""

from __future__ import annotations

import torch.nn.functional as F
from torch import nn

from seqbench.batching import WindowDataset
from seqbench.models.base import RNNModule, final_hidden, make_rnn


class Forecaster(RNNModule):
    DATASET = WindowDataset  # what it reads: windows of `lookback` rows of a series

    def __init__(
        self,
        input_size: int,
        cell: str = "lstm",
        hidden_size: int = 32,
        layers: int = 1,
        dropout: float = 0.0,
        learning_rate: float = 2e-3,
        weight_decay: float = 0.0,
        forget_bias: float | None = None,
        lr_schedule: str = "constant",
    ):
        super().__init__()
        self.save_hyperparameters()
        self.rnn = make_rnn(cell, input_size, hidden_size, layers, dropout, forget_bias=forget_bias)
        self.drop = nn.Dropout(dropout)
        self.head = nn.Linear(hidden_size, 1)
        # Start from the constant forecast (the training mean of the scaled target): for returns
        # that is already hard to beat, and a random head would start out worse than it.
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)

    def forward(self, x):
        """x [batch, lookback, features] -> the scaled target [batch]."""
        _, state = self.rnn(x)  # h [layers, batch, hidden]
        last = final_hidden(state, bidirectional=False)  # [batch, hidden]
        return self.head(self.drop(last)).squeeze(-1)

    def inputs(self, batch) -> tuple:
        return (batch[0],)  # batches are (windows, targets)

    def predict_step(self, batch, batch_idx: int = 0, dataloader_idx: int = 0):
        """Forecasts of the scaled target [batch]."""
        return self(*self.inputs(batch))

    def loss(self, batch):
        x, y = batch
        # Huber, not squared error: one crash day (1987: -25 standard deviations) would
        # otherwise dominate every gradient. Targets are scaled, so delta=1 is one std.
        return F.huber_loss(self(x), y, delta=1.0), len(y)
