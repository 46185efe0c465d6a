"""Classifier: embedding (tokens) or input projection (features), the RNN over packed
sequences, pooling over the last valid step or the mean of valid steps, then a linear head."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from seqbench.batching import RaggedDataset, collate_ragged
from seqbench.models.base import RNNModule, final_hidden, make_rnn


class Classifier(RNNModule):
    DATASET = RaggedDataset  # what it reads: variable-length sequences, batched padded
    # Sequences of different lengths: padded into one batch, with their lengths.
    collate_fn = staticmethod(collate_ragged)

    def __init__(
        self,
        num_classes: int,
        cell: str = "lstm",
        hidden_size: int = 32,
        layers: int = 1,
        dropout: float = 0.0,
        bidirectional: bool = False,
        pooling: str = "last",
        learning_rate: float = 2e-3,
        vocab_size: int | None = None,
        input_size: int | None = None,
        embedding_size: int | None = None,
        weight_decay: float = 0.0,
        forget_bias: float | None = None,
        lr_schedule: str = "constant",
        class_weights: list[float] | None = None,
        embeddings_trainable: bool = True,
    ):
        super().__init__()
        if (vocab_size is None) == (input_size is None):
            raise ValueError("give exactly one of vocab_size (tokens) or input_size (features)")
        self.save_hyperparameters()
        if vocab_size is not None:
            # Its own size: tied to the hidden size, the table would be most of the model.
            width = embedding_size or hidden_size
            self.encode = nn.Embedding(vocab_size, width, padding_idx=0)
            # Frozen pretrained vectors: the RNN learns to read them as they are.
            self.encode.weight.requires_grad_(embeddings_trainable)
        else:
            width = hidden_size
            self.encode = nn.Linear(input_size, hidden_size)
        self.rnn = make_rnn(cell, width, hidden_size, layers, dropout, bidirectional, forget_bias)
        self.drop = nn.Dropout(dropout)
        self.head = nn.Linear(hidden_size * (2 if bidirectional else 1), num_classes)
        # The loss's weight per class (the training split's balance; see prepare.class_weights).
        # Not persistent: it is rebuilt from hparams, so a model.pt stays weights only.
        weights = None if class_weights is None else torch.tensor(class_weights, dtype=torch.float32)
        if weights is not None and weights.shape != (num_classes,):
            raise ValueError(f"class_weights: {len(class_weights)} weights for {num_classes} classes")
        self.register_buffer("class_weights", weights, persistent=False)

    @torch.no_grad()
    def set_embeddings(self, vectors) -> None:
        """Start the token table from pretrained vectors [vocab, width] (row 0, <pad>, zero)."""
        vectors = torch.as_tensor(vectors, dtype=self.encode.weight.dtype)
        if vectors.shape != self.encode.weight.shape:
            raise ValueError(
                f"vectors {tuple(vectors.shape)} do not fit the token table {tuple(self.encode.weight.shape)}"
            )
        self.encode.weight.copy_(vectors)

    def forward(self, x, lengths):
        """x [batch, max_len(, features)], lengths [batch] -> logits [batch, classes]."""
        encoded = self.drop(self.encode(x))  # [batch, max_len, width]
        if self.hparams.bidirectional or encoded.is_cuda:
            pooled = self._packed(encoded, lengths)
        else:
            pooled = self._padded(encoded, lengths)
        return self.head(self.drop(pooled))  # pooled [batch, H or 2H]

    def _packed(self, encoded, lengths):
        """Packed sequences: each stops at its own end. Needed for the backward direction of a
        bidirectional RNN, and fast with cuDNN."""
        packed = pack_padded_sequence(encoded, lengths.cpu(), batch_first=True, enforce_sorted=False)
        outputs, state = self.rnn(packed)
        if self.hparams.pooling == "last":
            return final_hidden(state, self.hparams.bidirectional)
        padded, _ = pad_packed_sequence(outputs, batch_first=True)
        return padded.sum(dim=1) / lengths.to(padded.device, padded.dtype).unsqueeze(-1)

    def _padded(self, encoded, lengths):
        """A forward-only RNN over the padded batch, read at the valid steps. Same result as
        packing (steps after a sequence's end cannot change earlier outputs), and on a CPU
        several times faster to train: torch's packed backward pass is slow there. Length-
        bucketed batches keep the padding small."""
        outputs, _ = self.rnn(encoded)
        lengths = lengths.to(outputs.device)
        if self.hparams.pooling == "last":
            last = (lengths - 1).view(-1, 1, 1).expand(-1, 1, outputs.shape[-1])
            return outputs.gather(1, last).squeeze(1)
        valid = torch.arange(outputs.shape[1], device=outputs.device)[None, :] < lengths[:, None]
        return (outputs * valid.unsqueeze(-1)).sum(dim=1) / lengths.to(outputs.dtype).unsqueeze(-1)

    def loss(self, batch):
        x, lengths, y = batch
        # With weights, torch's mean divides by the batch's summed weights: a weighted mean.
        return F.cross_entropy(self(x, lengths), y, weight=self.class_weights), len(y)

    def inputs(self, batch) -> tuple:
        return batch[0], batch[1]  # batches are (padded sequences, lengths, labels)

    def predict_step(self, batch, batch_idx: int = 0, dataloader_idx: int = 0):
        """Class probabilities [batch, classes]."""
        return torch.softmax(self(*self.inputs(batch)), dim=-1)
