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
    """The training budget and model size. LSTM and GRU always get the same one."""

    max_epochs: int = Field(20, gt=0)
    patience: int = Field(3, gt=0)  # epochs without a better validation loss before stopping
    batch_size: int = Field(64, gt=0)
    learning_rate: float = Field(2e-3, gt=0)
    gradient_clip: float = Field(1.0, ge=0)  # 0 turns clipping off
    hidden_size: int = Field(32, gt=0)
    layers: int = Field(1, ge=1, le=8)
    dropout: float = Field(0.0, ge=0, lt=1)
    bidirectional: bool = False  # classifiers only: a forecaster must not see the future
    pooling: Literal["last", "mean"] = "last"  # classifiers: last valid step or mean of steps


class BudgetOverride(Strict):
    """Per-dataset changes to the global budget; unset keys keep the global value."""

    max_epochs: int | None = Field(None, gt=0)
    patience: int | None = Field(None, gt=0)
    batch_size: int | None = Field(None, gt=0)
    learning_rate: float | None = Field(None, gt=0)
    gradient_clip: float | None = Field(None, ge=0)
    hidden_size: int | None = Field(None, gt=0)
    layers: int | None = Field(None, ge=1, le=8)
    dropout: float | None = Field(None, ge=0, lt=1)
    bidirectional: bool | None = None
    pooling: Literal["last", "mean"] | None = None


class Training(Budget):
    """The `train:` section: the default budget plus how the runs are scheduled."""

    seeds: list[int] = Field(default_factory=lambda: [0, 1, 2], min_length=1)
    cells: list[Literal["lstm", "gru"]] = Field(default_factory=lambda: ["lstm", "gru"], min_length=1)
    # process: parallel local processes; dask: a Dask cluster; sequential: one at a time.
    runner: Literal["process", "dask", "sequential"] = "process"
    workers: int = Field(2, gt=0)  # runs at once (process, and dask's LocalCluster)
    dask_address: str | None = None  # an existing Dask scheduler, e.g. tcp://10.0.0.5:8786
    retries: int = Field(1, ge=0)  # retries of a run that failed (transient errors)

    @field_validator("seeds")
    @classmethod
    def _seeds_unique(cls, value):
        if len(set(value)) != len(value):
            raise ValueError("seeds must be distinct")
        return value

    @field_validator("cells")
    @classmethod
    def _cells_unique(cls, value):
        if len(set(value)) != len(value):
            raise ValueError("cells must be distinct")
        return value


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
    train: BudgetOverride = Field(default_factory=BudgetOverride)

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
    horizon: int = Field(1, gt=0)  # forecast the log return over the next `horizon` days

    MAPPABLE: ClassVar[tuple[str, ...]] = ("date", "symbol", "open", "high", "low", "close", "volume")


class TextDataset(DatasetBase):
    kind: Literal["text"]
    labels: list[str] = Field(min_length=2)
    max_chars: int = Field(20_000, gt=0)
    encoding: str = "utf-8"
    max_tokens: int = Field(200, gt=0)  # longer texts are cut to their first max_tokens tokens
    vocab_size: int = Field(20_000, gt=1)  # the most frequent training words; others are <unk>
    min_freq: int = Field(2, gt=0)  # words seen fewer times in training are <unk>

    @field_validator("labels", mode="before")
    @classmethod
    def _labels_as_strings(cls, value):
        # YAML reads `labels: [0, 1]` as ints; labels are compared as strings everywhere.
        return [str(v) for v in value] if isinstance(value, list) else value

    MAPPABLE: ClassVar[tuple[str, ...]] = ("text", "label", "split")


class VideoDataset(DatasetBase):
    kind: Literal["video"]
    labels: list[str] | None = None
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

    def dataset(self, name: str):
        try:
            return self.datasets[name]
        except KeyError:
            known = ", ".join(self.datasets) or "none"
            raise ConfigError(f"unknown dataset '{name}'; params.yaml declares: {known}") from None


    def budget(self, name: str) -> Budget:
        """The global budget with the dataset's own overrides applied."""
        fields = {k: getattr(self.train, k) for k in Budget.model_fields}
        fields.update(self.dataset(name).train.model_dump(exclude_none=True))
        return Budget(**fields)


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
