"""What the forecaster and the classifier share: the RNN, the optimiser, the logged losses."""

from __future__ import annotations

import lightning.pytorch as pl
import torch
from torch import nn

from seqbench.models.fused_gru import FusedGRU

# nn.LSTM runs oneDNN's fused kernel on a CPU; nn.GRU has none there, so the GRU is FusedGRU (an
# nn.GRU with a fused CPU kernel; cuDNN on a GPU).
CELLS = {"lstm": nn.LSTM, "gru": FusedGRU}


def make_rnn(
    cell: str,
    input_size: int,
    hidden_size: int,
    layers: int,
    dropout: float,
    bidirectional: bool = False,
    forget_bias: float | None = None,
):
    """A fused LSTM or GRU (see CELLS), batch-first. `forget_bias` sets the LSTM's
    forget-gate bias (b_if + b_hf) at the start; None keeps torch's random initialisation."""
    if cell not in CELLS:
        raise ValueError(f"cell must be one of {', '.join(CELLS)}, not {cell!r}")
    rnn = CELLS[cell](
        input_size,
        hidden_size,
        num_layers=layers,
        # torch warns about dropout on a single layer, where it does nothing.
        dropout=dropout if layers > 1 else 0.0,
        bidirectional=bidirectional,
        batch_first=True,
    )
    if cell == "lstm" and forget_bias is not None:
        set_forget_bias(rnn, forget_bias)
    return rnn


@torch.no_grad()
def set_forget_bias(rnn: nn.LSTM, value: float) -> None:
    """b_if = value and b_hf = 0 in every layer and direction (gate order i, f, g, o)."""
    h = rnn.hidden_size
    for name, bias in rnn.named_parameters():
        if name.startswith("bias_"):
            bias[h : 2 * h] = value if name.startswith("bias_ih") else 0.0


def final_hidden(state, bidirectional: bool):
    """The last layer's hidden state at each sequence's last valid step ([batch, H or 2H])."""
    h = state[0] if isinstance(state, tuple) else state  # LSTM gives (h, c), GRU gives h
    if bidirectional:
        return torch.cat([h[-2], h[-1]], dim=-1)
    return h[-1]


class RNNModule(pl.LightningModule):
    """Subclasses define `loss(batch) -> (loss, batch_size)`, `inputs(batch)` (forward()'s
    arguments, taken from a batch that also holds the targets) and `predict_step(batch)` (what
    the model predicts, in the form evaluation scores), and set `collate_fn`; the Trainer does
    the rest.

    Callers that run a model (evaluation, `seqbench predict`, the cost measurements) batch
    with its `collate_fn` and call `predict_step` or `self(*self.inputs(batch))`, so they need
    not know which task the model is for.
    """

    # The DataLoader's collate_fn for this model's batches; None is torch's default stacking.
    collate_fn = None

    def configure_optimizers(self):
        # AdamW: decoupled weight decay; with weight_decay 0 it is exactly Adam.
        optimizer = torch.optim.AdamW(
            self.parameters(), lr=self.hparams.learning_rate, weight_decay=self.hparams.get("weight_decay", 0.0)
        )
        if self.hparams.get("lr_schedule", "constant") == "constant":
            return optimizer
        # cosine: the learning rate decays from its start to 0 along a half cosine over
        # max_epochs, stepped once per epoch (Loshchilov & Hutter 2017, without restarts).
        # Early stopping may end a run before the end of the curve.
        # A k-fold refit sets cosine_epochs: the folds' horizon in its own, longer epochs.
        horizon = getattr(self, "cosine_epochs", None) or max(self.trainer.max_epochs, 1)
        schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=horizon)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule, "interval": "epoch"}}

    def on_train_epoch_start(self):
        self._train_loss_sum = torch.zeros(())
        self._train_count = 0

    def training_step(self, batch, batch_idx):
        loss, size = self.loss(batch)
        # Summed here and logged once per epoch: self.log on every step costs Lightning's
        # bookkeeping on every step, and only the epoch mean is ever looked at.
        self._train_loss_sum = self._train_loss_sum.to(loss.device) + loss.detach() * size
        self._train_count += size
        return loss

    def epoch_train_loss(self) -> float:
        return float(self._train_loss_sum / max(self._train_count, 1))

    def on_train_epoch_end(self):
        self.log("train_loss", self.epoch_train_loss())

    def transfer_batch_to_device(self, batch, device, dataloader_idx):
        # Batches are built on the CPU: there, skip Lightning's generic walk over the batch.
        if device.type == "cpu":
            return batch
        return super().transfer_batch_to_device(batch, device, dataloader_idx)

    def validation_step(self, batch, batch_idx):
        loss, size = self.loss(batch)
        self.log("val_loss", loss, on_step=False, on_epoch=True, batch_size=size)

    def trainable_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters() if p.requires_grad)

    def sized_parameters(self) -> int:
        """Trainable parameters the parameter budget counts: all but token embeddings, whose
        size does not depend on the cell (and would swamp the count: 20k words x 64)."""
        embedded = sum(
            p.numel() for m in self.modules() if isinstance(m, nn.Embedding) for p in m.parameters() if p.requires_grad
        )
        return self.trainable_parameters() - embedded
