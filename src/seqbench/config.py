"""The one place that knows the shape of params.yaml.

`load_params` returns validated pydantic models. A bad value is reported by its key path, e.g.
``datasets.stock.kind: must be one of stock, text, video``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, ClassVar, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from seqbench.errors import ConfigError

KINDS = ("stock", "text", "video")
DATASET_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"
# Token embeddings a text dataset can use -> their width (None: set by embedding_size).
EMBEDDINGS = {"learned": None, "glove-6b-50d": 50}


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


class Budget(Strict):
    """The training budget and model size of one cell. Without a search both cells get the same
    one; with a search (`search:`) each cell gets the best its own trials found."""

    max_epochs: int = Field(20, gt=0)
    patience: int = Field(3, gt=0)  # epochs without a better validation loss before stopping
    batch_size: int = Field(64, gt=0)
    learning_rate: float = Field(2e-3, gt=0)
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
    # items chooses the configuration and the epoch count; then every seed trains on all of them
    # for that many epochs. For classifiers with a few dozen sequences, where one small
    # validation split picks noise (it needs search trials >= 1: the folds choose the epochs).
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


SEARCHABLE = ("learning_rate", "weight_decay", "batch_size", "param_budget", "hidden_size", "embedding_size",
              "layers", "dropout", "forget_bias", "gradient_clip", "pooling")


class Search(Strict):
    """Equal-budget hyperparameter search per cell (Optuna): `trials` for each cell, same space."""

    trials: int = Field(0, ge=0)  # per cell; 0 trains the fixed budget above
    seed: int = 0  # the sampler's seed
    # Trials asked at once per cell. Fixed here, not taken from `workers`, so that which
    # trials are sampled (and which are pruned) is the same on any machine.
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
            problems = [e["msg"].removeprefix("Value error, ") if not e["loc"] else
                        f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in getattr(exc, "errors", lambda: [])()]
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


class Training(Budget):
    """The `train:` section: the default budget plus how the runs are scheduled."""

    # A list of seeds, a count (seeds 0..n-1), or auto: 5, or 10 when the training split holds
    # fewer than SMALL_DATA sequences (small data spreads more over seeds).
    seeds: Union[Literal["auto"], Annotated[int, Field(gt=0)], Annotated[list[int], Field(min_length=1)]] = "auto"
    cells: list[Literal["lstm", "gru"]] = Field(default_factory=lambda: ["lstm", "gru"], min_length=1)
    search: Search = Field(default_factory=Search)
    # process: parallel local processes; dask: a Dask cluster; sequential: one at a time.
    runner: Literal["process", "dask", "sequential"] = "process"
    workers: int = Field(2, gt=0)  # runs at once (process, and dask's LocalCluster)
    # torch threads per run. Fixed, not cores / workers: the float order, and so the result,
    # changes with the thread count. Parallelism comes from more runs at once.
    threads: int = Field(1, gt=0)
    dask_address: str | None = None  # an existing Dask scheduler, e.g. tcp://10.0.0.5:8786
    retries: int = Field(1, ge=0)  # retries of a run that failed (transient errors)

    @field_validator("seeds")
    @classmethod
    def _seeds_unique(cls, value):
        if isinstance(value, list) and len(set(value)) != len(value):
            raise ValueError("seeds must be distinct")
        return value

    @field_validator("cells")
    @classmethod
    def _cells_unique(cls, value):
        if len(set(value)) != len(value):
            raise ValueError("cells must be distinct")
        return value


SMALL_DATA = 500  # training sequences below which `seeds: auto` takes 10 seeds, not 5


def resolve_seeds(seeds, train_size: int) -> list[int]:
    """The seed list from params' `seeds` (list, count or auto) and the training split's size."""
    if isinstance(seeds, list):
        return list(seeds)
    if seeds == "auto":
        seeds = 10 if train_size < SMALL_DATA else 5
    return list(range(seeds))


class Schedule(Strict):
    """When and how the scheduled pipeline runs (flows/serve.py and flows/deploy.py)."""

    cron: str = "0 2 * * *"  # minute hour day-of-month month day-of-week
    timezone: str = "UTC"  # an IANA name, e.g. Europe/Berlin
    pull: bool = False  # `dvc pull` first, when a DVC remote is configured
    push: bool = False  # `dvc push` afterwards, when a DVC remote is configured

    @field_validator("cron")
    @classmethod
    def _five_fields(cls, value):
        # The full syntax is checked by Prefect when the deployment is made.
        if len(value.split()) != 5:
            raise ValueError("must have 5 fields: minute hour day-of-month month day-of-week, e.g. '0 2 * * *'")
        return value

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value):
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone '{value}'; use an IANA name such as UTC or Europe/Berlin") from None
        return value


class DatasetBase(Strict):
    # `source` is one source, or a mapping from split name (train, test, ...) to a source.
    source: Union[str, dict[str, str]]
    # Canonical column name -> column name in the source.
    columns: dict[str, str] = Field(default_factory=dict)
    splits: Splits = Field(default_factory=Splits)
    # Validation fails when more than this fraction of rows is quarantined.
    max_quarantine_fraction: float = Field(0.05, ge=0, le=1)
    train: DatasetTraining = Field(default_factory=DatasetTraining)

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
                    f"columns: '{name}' is not a column of kind {self.kind}; "
                    f"map one of: {', '.join(allowed)}"
                )
        return self

    def sources(self) -> dict[str | None, str]:
        """Split name -> source; None when the source holds every split."""
        if isinstance(self.source, str):
            return {None: self.source}
        return dict(self.source)


class StockDataset(DatasetBase):
    kind: Literal["stock"]
    # strftime format of the date column; None parses ISO and m/d/Y dates.
    date_format: str | None = None
    # Symbol name for a single-series file that has no symbol column.
    symbol: str = "SERIES"
    # The longest allowed calendar gap between consecutive dates of one symbol.
    max_gap_days: int = Field(10, gt=0)
    lookback: int = Field(30, gt=0)  # days in one input window
    # return: the log return over the next `horizon` days; volatility: the log of the realised
    # variance over the next `horizon` days.
    horizon: int = Field(1, gt=0)
    target: Literal["return", "volatility"] = "return"
    # The daily variance a volatility target sums: squared log returns (close to close, what
    # GARCH and EWMA model), or a range estimator from the day's high and low (Parkinson) and
    # also open and close (Garman-Klass). A range estimator falls back to the squared return on
    # a day without a real range (high == low, e.g. the S&P 500's 1950s rows).
    variance: Literal["squared_returns", "parkinson", "garman_klass"] = "squared_returns"

    MAPPABLE: ClassVar[tuple[str, ...]] = ("date", "symbol", "open", "high", "low", "close", "volume")

    @model_validator(mode="after")
    def _variance_needs_volatility(self):
        # An unused setting is a mistake waiting to be believed: say so instead of ignoring it.
        if "variance" in self.model_fields_set and self.target != "volatility":
            raise ValueError("variance: applies only to target: volatility")
        return self


class TextDataset(DatasetBase):
    kind: Literal["text"]
    labels: list[str] = Field(min_length=2)
    max_chars: int = Field(20_000, gt=0)
    encoding: str = "utf-8"
    max_tokens: int = Field(200, gt=0)  # longer texts are cut to their first max_tokens tokens
    vocab_size: int = Field(20_000, gt=1)  # the most frequent training words; others are <unk>
    min_freq: int = Field(2, gt=0)  # words seen fewer times in training are <unk>
    # balanced: the RNN's loss weights each class by n / (classes x its count in the training
    # split), and the TF-IDF + LR baseline takes class_weight="balanced", the same rule;
    # none: neither is weighted. So models and baseline see the imbalance the same way.
    class_weight: Literal["balanced", "none"] = "balanced"
    # learned: a token table trained from scratch, `embedding_size` wide; glove-6b-50d:
    # pretrained GloVe vectors (the `glove` extra), 50 wide, so embedding_size does not apply.
    embeddings: str = "learned"
    embeddings_trainable: bool = True  # fine-tune pretrained vectors (true) or freeze them

    @field_validator("labels", mode="before")
    @classmethod
    def _labels_as_strings(cls, value):
        # YAML reads `labels: [0, 1]` as ints; labels are compared as strings everywhere.
        return [str(v) for v in value] if isinstance(value, list) else value

    @field_validator("embeddings")
    @classmethod
    def _known_embeddings(cls, value):
        if value not in EMBEDDINGS:
            raise ValueError(f"unknown embeddings '{value}'; use one of: {', '.join(EMBEDDINGS)}")
        return value

    @model_validator(mode="after")
    def _embedding_settings_agree(self):
        if self.embeddings == "learned":
            if not self.embeddings_trainable:
                raise ValueError("embeddings_trainable: false freezes pretrained vectors; with "
                                 "embeddings: learned the table would stay random")
            return self
        # Pretrained vectors fix the width: a different size asked for here is a contradiction
        # (a global train.embedding_size, shared with other datasets, is ignored instead).
        width = EMBEDDINGS[self.embeddings]
        own = self.train.embedding_size
        if own is not None and own != width:
            raise ValueError(f"train.embedding_size: {own} contradicts embeddings: {self.embeddings} "
                             f"({width} wide); remove it")
        if "embedding_size" in (self.train.search.space or {}):
            raise ValueError(f"train.search.space.embedding_size: embeddings: {self.embeddings} are "
                             f"{width} wide, so searching the size wastes trials; remove it")
        return self

    MAPPABLE: ClassVar[tuple[str, ...]] = ("text", "label", "split")


class VideoDataset(DatasetBase):
    kind: Literal["video"]
    labels: list[str] | None = None
    class_weight: Literal["balanced", "none"] = "balanced"  # the classifier's loss, as for text
    min_frames: int = Field(2, gt=0)
    max_frames: int = Field(10_000, gt=0)

    @field_validator("labels", mode="before")
    @classmethod
    def _labels_as_strings(cls, value):
        return [str(v) for v in value] if isinstance(value, list) else value

    @model_validator(mode="after")
    def _frame_bounds_ordered(self):
        if self.min_frames > self.max_frames:
            raise ValueError("min_frames must be <= max_frames")
        return self

    MAPPABLE: ClassVar[tuple[str, ...]] = ("clip_id", "frame", "label", "split")


Dataset = Annotated[Union[StockDataset, TextDataset, VideoDataset], Field(discriminator="kind")]


class Params(Strict):
    datasets: dict[str, Dataset] = Field(min_length=1)
    train: Training = Field(default_factory=Training)
    schedule: Schedule = Field(default_factory=Schedule)

    @field_validator("datasets")
    @classmethod
    def _names_are_path_safe(cls, value):
        import re

        for name in value:
            if not re.match(DATASET_NAME, name):
                raise ValueError(
                    f"dataset name '{name}' may hold only letters, digits, '_', '-' and '.'"
                )
        return value

    @model_validator(mode="after")
    def _kfold_where_it_works(self) -> Params:
        for name, dataset in self.datasets.items():
            if self.budget(name).validation != "kfold":
                continue
            if dataset.kind == "stock":
                raise ValueError(f"datasets.{name}: validation: kfold needs a classification dataset; "
                                 "a stock dataset validates on the period after its training data (holdout)")
            if not self.search(name).trials:
                raise ValueError(f"datasets.{name}: validation: kfold needs train.search.trials >= 1 "
                                 "(the folds choose each cell's epoch count)")
        return self

    def dataset(self, name: str):
        try:
            return self.datasets[name]
        except KeyError:
            known = ", ".join(self.datasets) or "none"
            raise ConfigError(f"unknown dataset '{name}'; params.yaml declares: {known}") from None


    def budget(self, name: str) -> Budget:
        """The global budget with the dataset's own overrides applied (before any search)."""
        fields = {k: getattr(self.train, k) for k in Budget.model_fields}
        fields.update(self.dataset(name).train.model_dump(exclude_none=True, exclude={"search"}))
        return Budget(**fields)

    def search(self, name: str) -> Search:
        """The global search settings with the dataset's own merged in (its space key by key)."""
        merged = self.train.search.model_dump()
        own = self.dataset(name).train.search.model_dump(exclude_none=True)
        merged["space"] = {**merged["space"], **own.pop("space", {})}
        merged.update(own)
        return Search(**merged)


def _format_error(error: dict) -> str:
    # Drop the discriminator tag pydantic inserts into the path (datasets.x.stock.columns).
    loc = [str(p) for i, p in enumerate(error["loc"]) if not (i == 2 and p in KINDS)]
    path = ".".join(loc)
    kind = error["type"]
    if kind == "union_tag_invalid" or kind == "union_tag_not_found":
        return f"{path}.kind: must be one of {', '.join(KINDS)}"
    if kind == "extra_forbidden":
        return f"{path}: unknown key"
    if kind == "missing":
        return f"{path}: required key is missing"
    message = error["msg"].removeprefix("Value error, ")
    return f"{path}: {message}" if path else message


def parse_params(data: object, origin: str = "params.yaml") -> Params:
    if not isinstance(data, dict):
        raise ConfigError(f"{origin}: expected a mapping with a 'datasets' key")
    try:
        return Params.model_validate(data)
    except ValidationError as exc:
        lines = [_format_error(e) for e in exc.errors()]
        raise ConfigError(f"{origin}: " + "; ".join(lines)) from None


def load_params(path: Path | str = "params.yaml") -> Params:
    import yaml

    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: not found (run from the project root or pass --params)") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read ({exc})") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise ConfigError(f"{path}: not valid YAML{where}") from None
    return parse_params(data, str(path))
