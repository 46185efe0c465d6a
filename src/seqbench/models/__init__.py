"""LightningModules over torch.nn.LSTM / torch.nn.GRU: one per task."""

from __future__ import annotations


def build_model(meta: dict, cell: str, budget):
    """The model for a prepared dataset (its meta.json) with the given cell and budget."""
    from seqbench.models.classifier import Classifier
    from seqbench.models.forecaster import Forecaster

    common = dict(cell=cell, hidden_size=budget.hidden_size, layers=budget.layers,
                  dropout=budget.dropout, learning_rate=budget.learning_rate)
    if meta["task"] == "forecast":
        return Forecaster(input_size=meta["input_size"], **common)
    sizes = {"vocab_size": len(meta["vocabulary"])} if meta["input"] == "tokens" else {"input_size": meta["input_size"]}
    return Classifier(num_classes=len(meta["labels"]), bidirectional=budget.bidirectional,
                      pooling=budget.pooling, **common, **sizes)


def model_from_config(config: dict):
    """Rebuild a model from the `model` entry of a run's config.json (no weights)."""
    from seqbench.models.classifier import Classifier
    from seqbench.models.forecaster import Forecaster

    classes = {"Forecaster": Forecaster, "Classifier": Classifier}
    return classes[config["class"]](**config["hparams"])
