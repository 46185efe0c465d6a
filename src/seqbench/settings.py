"""The building blocks of params.yaml that config.py and the kinds share: the training budget,
the search, the keys every dataset has (`DatasetBase`), and the bounds on reading a source
(`Ingest`, here so that sources.py has them without importing config.py and the kinds).

Apart from config.py so that each kind can define its own settings class (kinds/<kind>.py)
on top of `DatasetBase`, and config.py can build the `datasets:` union from the kinds'
registry, without the two importing each other.
"""

from __future__ import annotations

from typing import ClassVar, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator


class Strict(BaseModel):
    """Unknown keys are errors: a typo must not silently fall back to a default."""

    model_config = ConfigDict(extra="forbid")


class Splits(Strict):
    """Fractions carved out for validation and test where the source has no split of its own."""

    validation: float = Field(0.15, gt=0, lt=1)
    test: float = Field(0.15, gt=0, lt=1)
    # Seed of the stratified random splits (text, video); stock splits by date.
    seed: int = 0

    @model_validator(mode="after")
    def _leave_some_training_data(self) -> Splits:
        if self.validation + self.test >= 1:
            raise ValueError("validation + test must be < 1")
        return self


GIB = 1024**3


class Ingest(Strict):
    """The `ingest:` section: bounds on reading one source, so that a wrong or hostile source (a
    huge file, a zip bomb, a server that stalls) ends in a clear error, not a full memory or a
    hung pipeline. The defaults fit any data set seqbench can train on in memory."""

    # Bytes of one source: downloaded, on disk, and again after decompression (gzip, zip, ...).
    max_bytes: int = Field(2 * GIB, gt=0)
    max_rows: int = Field(50_000_000, gt=0)
    connect_timeout_s: float = Field(30.0, gt=0)  # to open a connection to a URL's server
    read_timeout_s: float = Field(60.0, gt=0)  # a server silent for this long ends the try
    tries: int = Field(3, ge=1, le=10)  # downloads tried this often on network errors, 5xx and 429
    # Where an HTTP(S) source's redirects may lead: to the same scheme, host and port
    # ("same_origin"), or anywhere public ("public"); never, unless the source names one itself,
    # to a private, loopback or link-local address (a redirect there reads the network's inside).
    redirects: Literal["same_origin", "public"] = "same_origin"


class Budget(Strict):
    """The training budget and model size of one cell. Without a search both cells get the same
    one; with a search (`search:`) each cell gets the best its own trials found."""

    max_epochs: int = Field(20, gt=0)
    patience: int = Field(3, gt=0)  # epochs without a better validation loss before stopping
    batch_size: int = Field(64, gt=0)
    learning_rate: float = Field(2e-3, gt=0)
    # constant, or cosine: decayed to 0 over max_epochs along a half cosine, once per epoch
    lr_schedule: Literal["constant", "cosine"] = "constant"
    weight_decay: float = Field(0.0, ge=0)  # AdamW's decoupled weight decay
    gradient_clip: float = Field(1.0, ge=0)  # 0 turns clipping off
    # size_match: params sizes each cell by `param_budget` (equal parameter counts, the fair
    # default); hidden gives both cells `hidden_size` (the LSTM then has a third more weights).
    size_match: Literal["params", "hidden"] = "params"
    # Trainable parameters per cell, token embeddings not counted (they do not depend on the
    # cell). None: what an LSTM of `hidden_size` has.
    param_budget: int | None = Field(None, gt=0)
    hidden_size: int = Field(32, gt=0)
    embedding_size: int = Field(64, gt=0)  # token embeddings (text); sized apart from the RNN
    layers: int = Field(1, ge=1, le=8)
    dropout: float = Field(0.0, ge=0, lt=1)  # between layers and before the head
    # The LSTM's forget-gate bias at the start (Jozefowicz et al. 2015 use 1); None keeps torch's
    # random initialisation. The GRU has no forget gate and ignores it.
    forget_bias: float | None = None
    bidirectional: bool = False  # classifiers only: a forecaster must not see the future
    pooling: Literal["last", "mean"] = "last"  # classifiers: last valid step or mean of steps
    # How a configuration is validated. holdout: on the validation split, where each run also
    # stops early. kfold: stratified k-fold cross-validation over the training and validation
    # items chooses the configuration and the epoch; then every seed trains on all of them for
    # the optimiser steps the folds took to it (not as many epochs: more batches each). For
    # classifiers with a few dozen sequences, where one small validation split picks noise (it
    # needs search trials >= 1: the folds choose the epochs).
    validation: Literal["holdout", "kfold"] = "holdout"
    folds: int = Field(5, ge=2, le=20)  # with validation: kfold


def _optional(model: type[BaseModel], name: str) -> type[BaseModel]:
    """A copy of `model` whose fields are all optional (None = not overridden)."""
    from copy import copy

    from pydantic import create_model

    fields = {}
    for key, info in model.model_fields.items():
        info = copy(info)
        info.default, info.default_factory = None, None
        fields[key] = (info.annotation | None, info)
    return create_model(name, __base__=Strict, **fields)


# A search dimension: a fixed value, a list of choices, or a range (ints stay ints).
class Range(Strict):
    low: float
    high: float
    log: bool = False  # sample uniformly on the log scale (learning rates, weight decay)

    @model_validator(mode="after")
    def _ordered(self) -> Range:
        if self.low > self.high:
            raise ValueError(f"low ({self.low:g}) must be <= high ({self.high:g})")
        if self.log and self.low <= 0:
            raise ValueError("a log range needs low > 0")
        return self


SEARCHABLE = (
    "learning_rate",
    "lr_schedule",
    "weight_decay",
    "batch_size",
    "param_budget",
    "hidden_size",
    "embedding_size",
    "layers",
    "dropout",
    "forget_bias",
    "gradient_clip",
    "pooling",
)


class Search(Strict):
    """Equal-budget hyperparameter search per cell (Optuna): `trials` for each cell, same space."""

    trials: int = Field(0, ge=0)  # per cell; 0 trains the fixed budget above
    seed: int = 0  # the sampler's seed
    # Trials asked at once per cell. Fixed here, not taken from `workers`, so that which
    # trials are sampled (and which are pruned) does not depend on the number of workers.
    parallel: int = Field(2, gt=0)
    startup_trials: int = Field(4, ge=1)  # TPE samples at random until this many trials are done
    pruner: Literal["median", "none"] = "median"
    prune_after: int = Field(3, ge=0)  # epochs a trial always gets before it can be pruned
    # key -> a fixed value, a list of choices, or a range {low, high, log}
    space: dict[str, object] = Field(default_factory=dict)

    @field_validator("trials", mode="before")
    @classmethod
    def _whole_number(cls, value):
        if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
            raise ValueError("must be a whole number >= 0")
        return value

    @field_validator("space")
    @classmethod
    def _known_keys(cls, space):
        return {key: _dimension(key, value) for key, value in space.items()}


def _dimension(key: str, value):
    """One search dimension, checked: each value it can take must be a valid budget value."""
    if key not in SEARCHABLE:
        raise ValueError(f"'{key}' is not a search key; searchable: {', '.join(SEARCHABLE)}")
    if isinstance(value, dict):
        try:
            value = Range(**value)
        except (ValidationError, TypeError) as exc:
            problems = [
                e["msg"].removeprefix("Value error, ")
                if not e["loc"]
                else f"{'.'.join(map(str, e['loc']))}: {e['msg']}"
                for e in getattr(exc, "errors", lambda: [])()
            ]
            raise ValueError(f"{key}: " + ("; ".join(problems) or "a range takes low, high and log")) from None
        values = [value.low, value.high]
    elif isinstance(value, list):
        if not value:
            raise ValueError(f"{key}: an empty list of choices")
        values = value
    else:
        values = [value]
    for one in values:
        try:
            Budget(**{key: one})
        except ValidationError as exc:
            raise ValueError(f"{key}: {one!r} is not allowed ({exc.errors()[0]['msg']})") from None
    return value


SearchOverride = _optional(Search, "SearchOverride")


BudgetOverride = _optional(Budget, "BudgetOverride")


class DatasetTraining(BudgetOverride):
    """A dataset's own `train:` keys: any budget key, and search keys merged over the global ones."""

    search: SearchOverride = Field(default_factory=SearchOverride)  # type: ignore[valid-type]


# The regions of practical equivalence (`verdict.rope`): per metric, a half-width in the metric's
# units (a number) or relative to the best baseline's score (a percentage, "1%"). Why these:
# README, "Reading the report". 0.01 of macro-F1 or accuracy is one test example in a hundred;
# forecast losses have no natural unit, so 1% of the best baseline's RMSE or QLIKE.
ROPE_DEFAULTS = {
    "macro_f1": 0.01,
    "accuracy": 0.01,
    "balanced_accuracy": 0.01,
    "roc_auc": 0.01,
    "rmse": "1%",
    "mae": "1%",
    "qlike": "1%",
    "mse_log": "1%",
}


def parse_rope(width) -> tuple[float, bool]:
    """(value, relative): a number >= 0 in the metric's units, or "P%" of the best baseline's score."""
    import math

    relative = isinstance(width, str)
    text = width.strip() if relative else width
    if relative:
        if not text.endswith("%"):
            raise ValueError(f"{width!r} is neither a number nor a percentage such as '1%'")
        try:
            text = float(text[:-1])
        except ValueError:
            raise ValueError(f"{width!r} is neither a number nor a percentage such as '1%'") from None
    if isinstance(text, bool) or not isinstance(text, (int, float)) or not math.isfinite(text) or text < 0:
        raise ValueError(f"{width!r} must be a finite width >= 0 (a number, or a percentage such as '1%')")
    return (float(text) / 100 if relative else float(text)), relative


class Verdict(Strict):
    """`verdict:`: how a comparison is decided. `rope` maps a metric to its region of practical
    equivalence; the defaults (ROPE_DEFAULTS) apply to metrics it does not name."""

    rope: dict[str, Union[float, str]] = Field(default_factory=dict)

    @field_validator("rope", mode="before")
    @classmethod
    def _no_booleans(cls, value):
        # Before pydantic's coercion, which would read YAML's `yes` as a width of 1.
        for metric, width in (value or {}).items() if isinstance(value, dict) else ():
            if isinstance(width, bool):
                raise ValueError(f"{metric}: {width!r} is neither a number nor a percentage such as '1%'")
        return value

    @field_validator("rope")
    @classmethod
    def _known_metrics_and_widths(cls, value):
        from seqbench.metrics import HIGHER_IS_BETTER

        for metric, width in value.items():
            if metric not in HIGHER_IS_BETTER:
                raise ValueError(f"{metric}: not a metric seqbench computes; known: {', '.join(HIGHER_IS_BETTER)}")
            try:
                parse_rope(width)
            except ValueError as exc:
                raise ValueError(f"{metric}: {exc}") from None
        return value


class DatasetBase(Strict):
    """The keys every dataset has. Each kind subclasses it in its own module with a `kind`
    literal (the discriminator of params.yaml's `datasets:` union), its own keys and MAPPABLE."""

    # `source` is one source, or a mapping from split name (train, test, ...) to a source.
    source: Union[str, dict[str, str]]
    # Canonical column name -> column name in the source.
    columns: dict[str, str] = Field(default_factory=dict)
    splits: Splits = Field(default_factory=Splits)
    # Validation fails when more than this fraction of rows is quarantined.
    max_quarantine_fraction: float = Field(0.05, ge=0, le=1)
    train: DatasetTraining = Field(default_factory=DatasetTraining)
    verdict: Verdict = Field(default_factory=Verdict)  # over the global `verdict:`, metric by metric

    # The canonical columns a `columns:` mapping may name; each kind sets its own.
    MAPPABLE: ClassVar[tuple[str, ...]] = ()

    @field_validator("source")
    @classmethod
    def _source_not_empty(cls, value):
        if isinstance(value, str) and not value.strip():
            raise ValueError("must not be empty")
        if isinstance(value, dict) and not value:
            raise ValueError("must name at least one split")
        return value

    @model_validator(mode="after")
    def _columns_are_canonical(self):
        allowed = self.MAPPABLE
        for name in self.columns:
            if name not in allowed:
                raise ValueError(
                    f"columns: '{name}' is not a column of kind {self.kind}; map one of: {', '.join(allowed)}"
                )
        return self

    def sources(self) -> dict[str | None, str]:
        """Split name -> source; None when the source holds every split."""
        if isinstance(self.source, str):
            return {None: self.source}
        return dict(self.source)
