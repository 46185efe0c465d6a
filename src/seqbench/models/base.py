"""What the forecaster and the classifier share: the RNN, the optimiser, the logged losses."""

from __future__ import annotations

import pytorch_lightning as pl
import torch
from torch import nn

CELLS = {"lstm": nn.LSTM, "gru": nn.GRU}


def make_rnn(cell: str, input_size: int, hidden_size: int, layers: int, dropout: float, bidirectional: bool = False):
    """torch's fused LSTM or GRU (cuDNN on a GPU), batch-first."""
    if cell not in CELLS:
        raise ValueError(f"cell must be one of {', '.join(CELLS)}, not {cell!r}")
    return CELLS[cell](
        input_size,
        hidden_size,
        num_layers=layers,
        # torch warns about dropout on a single layer, where it does nothing.
        dropout=dropout if layers > 1 else 0.0,
        bidirectional=bidirectional,
        batch_first=True,
    )


def final_hidden(state, bidirectional: bool):
    """The last layer's hidden state at each sequence's last valid step ([batch, H or 2H])."""
    h = state[0] if isinstance(state, tuple) else state  # LSTM gives (h, c), GRU gives h
    if bidirectional:
        return torch.cat([h[-2], h[-1]], dim=-1)
    return h[-1]


class RNNModule(pl.LightningModule):
    """Subclasses define `loss(batch) -> (loss, batch_size)`; the Trainer does the rest."""

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=self.hparams.learning_rate)

    def training_step(self, batch, batch_idx):
        loss, size = self.loss(batch)
        self.log("train_loss", loss, on_step=False, on_epoch=True, batch_size=size)
        return loss

    def validation_step(self, batch, batch_idx):
        loss, size = self.loss(batch)
        self.log("val_loss", loss, on_step=False, on_epoch=True, batch_size=size)

    def trainable_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters() if p.requires_grad)
