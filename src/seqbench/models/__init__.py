"""LightningModules over torch.nn.LSTM / torch.nn.GRU: one per task, sized by a parameter budget."""

from __future__ import annotations

from seqbench.errors import ConfigError

LARGEST_HIDDEN = 4096


def build_model(meta: dict, cell: str, budget, arrays: dict | None = None):
    """The model for a prepared dataset (its meta.json) with the given cell and budget. The
    hidden size is the budget's own, or (size_match: params) the one `sized_hidden` finds.
    `arrays` (the prepared arrays) bring pretrained token vectors, where the dataset has them;
    leave it out only to size a model, not to train one."""
    hidden = sized_hidden(meta, cell, budget) if budget.size_match == "params" else budget.hidden_size
    model = _model(meta, cell, budget, hidden)
    if arrays is not None and "embeddings" in arrays:
        model.set_embeddings(arrays["embeddings"])
    return model


def _model(meta: dict, cell: str, budget, hidden_size: int):
    from seqbench.models.classifier import Classifier
    from seqbench.models.forecaster import Forecaster

    common = dict(
        cell=cell,
        hidden_size=hidden_size,
        layers=budget.layers,
        dropout=budget.dropout,
        learning_rate=budget.learning_rate,
        weight_decay=budget.weight_decay,
        forget_bias=budget.forget_bias,
        lr_schedule=budget.lr_schedule,
    )
    if meta["task"] == "forecast":
        return Forecaster(input_size=meta["input_size"], **common)
    if meta["input"] == "tokens":
        # Pretrained vectors fix the table's width; budget.embedding_size is for learned ones.
        embeddings = meta.get("embeddings", {})
        sizes = {
            "vocab_size": len(meta["vocabulary"]),
            "embedding_size": embeddings.get("size") or budget.embedding_size,
            "embeddings_trainable": embeddings.get("trainable", True),
        }
    else:
        sizes = {"input_size": meta["input_size"]}
    return Classifier(
        num_classes=len(meta["labels"]),
        bidirectional=budget.bidirectional,
        pooling=budget.pooling,
        class_weights=meta.get("class_weights"),
        **common,
        **sizes,
    )


def model_class(meta: dict):
    """The LightningModule of a prepared dataset's task."""
    from seqbench.models.classifier import Classifier
    from seqbench.models.forecaster import Forecaster

    return Forecaster if meta["task"] == "forecast" else Classifier


def datasets_for(arrays: dict, meta: dict, splits=("train", "val", "test")) -> dict:
    """Split name -> the Dataset the task's model reads (training and search ask for train and
    val only: the test split is read by evaluation alone). Its `loader()` batches it."""
    dataset = model_class(meta).DATASET
    return {split: dataset.of_split(arrays, meta, split) for split in splits}


def param_budget(meta: dict, budget) -> int:
    """The budget's parameter count; by default what an LSTM of `hidden_size` has."""
    if budget.param_budget is not None:
        return budget.param_budget
    return _model(meta, "lstm", budget, budget.hidden_size).sized_parameters()


def sized_hidden(meta: dict, cell: str, budget) -> int:
    """The largest hidden size whose model stays within the parameter budget (a bisection: the
    count grows with the hidden size). So LSTM and GRU get equal parameter counts, give or take
    one hidden unit's worth, as Chung et al. (2014) compared them."""
    target = param_budget(meta, budget)

    def count(hidden: int) -> int:
        return _model(meta, cell, budget, hidden).sized_parameters()

    if count(1) > target:
        raise ConfigError(
            f"param_budget: {target:,} parameters is below the smallest {cell} model "
            f"for this dataset (hidden size 1 has {count(1):,}); raise param_budget"
        )
    low, high = 1, LARGEST_HIDDEN
    while low < high:
        middle = (low + high + 1) // 2
        low, high = (middle, high) if count(middle) <= target else (low, middle - 1)
    return low


def model_from_config(config: dict):
    """Rebuild a model from the `model` entry of a run's config.json (no weights)."""
    from seqbench.models.classifier import Classifier
    from seqbench.models.forecaster import Forecaster

    classes = {"Forecaster": Forecaster, "Classifier": Classifier}
    return classes[config["class"]](**config["hparams"])
