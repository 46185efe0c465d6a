"""Classifier: embedding (tokens) or input projection (features), the RNN over packed
sequences, pooling over the last valid step or the mean of valid steps, then a linear head."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from seqbench.models.base import RNNModule, final_hidden, make_rnn


class Classifier(RNNModule):
    def __init__(self, num_classes: int, cell: str = "lstm", hidden_size: int = 32, layers: int = 1,
                 dropout: float = 0.0, bidirectional: bool = False, pooling: str = "last",
                 learning_rate: float = 2e-3, vocab_size: int | None = None, input_size: int | None = None):
        super().__init__()
        if (vocab_size is None) == (input_size is None):
            raise ValueError("give exactly one of vocab_size (tokens) or input_size (features)")
        self.save_hyperparameters()
        if vocab_size is not None:
            self.encode = nn.Embedding(vocab_size, hidden_size, padding_idx=0)
        else:
            self.encode = nn.Linear(input_size, hidden_size)
        self.rnn = make_rnn(cell, hidden_size, hidden_size, layers, dropout, bidirectional)
        self.head = nn.Linear(hidden_size * (2 if bidirectional else 1), num_classes)

    def forward(self, x, lengths):
        """x [batch, max_len(, features)], lengths [batch] -> logits [batch, classes]."""
        # Packing makes the RNN stop at each sequence's end: padding costs no compute.
        packed = pack_padded_sequence(self.encode(x), lengths.cpu(), batch_first=True, enforce_sorted=False)
        outputs, state = self.rnn(packed)
        if self.hparams.pooling == "last":
            pooled = final_hidden(state, self.hparams.bidirectional)
        else:
            padded, _ = pad_packed_sequence(outputs, batch_first=True)
            pooled = padded.sum(dim=1) / lengths.to(padded.device, padded.dtype).unsqueeze(-1)
        return self.head(pooled)

    def loss(self, batch):
        x, lengths, y = batch
        return F.cross_entropy(self(x, lengths), y), len(y)

    @torch.no_grad()
    def predict_proba(self, x, lengths):
        return torch.softmax(self(x, lengths), dim=-1)
