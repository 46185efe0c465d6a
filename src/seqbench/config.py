"""The one place that knows the shape of params.yaml as a whole.

`load_params` returns validated pydantic models. A bad value is reported by its key path, e.g.
``datasets.stock.kind: must be one of stock, text, video``.

The budget, the search and the keys every dataset has are in settings.py; each kind's own
keys are in its module (kinds/<kind>.py, its SETTINGS class). The `datasets:` union is built
from the kinds' registry, so a new kind needs no change here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal, Union

from pydantic import Field, ValidationError, field_validator, model_validator

from seqbench.errors import ConfigError
from seqbench.kinds import KINDS
from seqbench.redact import register_sources
from seqbench.settings import ROPE_DEFAULTS, Budget, DatasetTraining, Ingest, Search, Strict, Verdict, parse_rope

# Dataset and suite names become DVC stage names (ingest@NAME), params keys (datasets.NAME) and
# file names (data/raw/NAME.parquet, reports/validation/NAME.json). No dots: DVC reads a dot in
# `datasets.NAME` as nesting, and NAME.json beside a dataset NAME.json would collide. A length
# that every file system takes with the suffixes the project adds.
NAME = r"[A-Za-z0-9][A-Za-z0-9_-]*"
NAME_MAX = 64


class DaskTLS(Strict):
    """Certificates for a `tls://` Dask scheduler: the CA that signed the cluster's certificates,
    and this client's certificate and key (PEM files; relative paths are relative to params.yaml)."""

    ca_file: str
    cert: str
    key: str


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
    # native: torch, oneDNN and MKL run this CPU's fastest code (AVX2, AVX-512, ...); portable:
    # baseline x86-64 code for all of them, so neither the CPU's vector units nor the environment
    # pick the kernels a run computes with, at about twice the training time (numerics.py;
    # bench/numerics.py measured it). Global: every run and trial alike (a pooled worker computes
    # in one mode).
    numerics: Literal["native", "portable"] = "native"
    # An existing Dask scheduler, e.g. tcp://10.0.0.5:8786 or tls://...: its workers need not share
    # the project's disk (a run's inputs and results travel with its task).
    dask_address: str | None = None
    dask_tls: DaskTLS | None = None  # required by a tls:// address
    dask_timeout_s: float = Field(30.0, gt=0)  # to connect to dask_address before giving up
    retries: int = Field(1, ge=0)  # retries of a run that failed (transient errors, a lost worker)

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

    @model_validator(mode="after")
    def _tls_with_a_tls_address(self):
        tls = (self.dask_address or "").startswith("tls://")
        if tls and self.dask_tls is None:
            raise ValueError("dask_tls: a tls:// dask_address needs {ca_file, cert, key}")
        if self.dask_tls is not None and not tls:
            raise ValueError(f"dask_tls: set, but dask_address {self.dask_address!r} is not a tls:// address")
        return self


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


# A Friedman test over LSTM, GRU and the baselines ranks models within each dataset: with fewer
# than 3 datasets there is nothing to rank across.
MIN_SUITE_DATASETS = 3


class Suite(Strict):
    """A named group of declared datasets compared together (suite.py): the across-dataset tests
    and the critical-difference diagram. `train:` is shared by its members, over the global
    budget and under each dataset's own `train:` (the same keys as a dataset's)."""

    datasets: list[str]
    train: DatasetTraining = Field(default_factory=DatasetTraining)

    @field_validator("datasets")
    @classmethod
    def _enough_to_rank(cls, value):
        if len(set(value)) != len(value):
            raise ValueError("names a dataset twice")
        if len(value) < MIN_SUITE_DATASETS:
            raise ValueError(
                f"has {len(value)} dataset(s); a suite needs at least {MIN_SUITE_DATASETS}, "
                "as its Friedman test ranks the models across datasets"
            )
        return value

    def sets_train(self) -> bool:
        return bool(
            self.train.model_dump(exclude_none=True, exclude={"search"})
            or self.train.search.model_dump(exclude_none=True)
        )


# One settings class per kind, told apart by its `kind` key.
Dataset = Annotated[Union[tuple(kind.SETTINGS for kind in KINDS.values())], Field(discriminator="kind")]


class Params(Strict):
    datasets: dict[str, Dataset] = Field(min_length=1)
    train: Training = Field(default_factory=Training)
    ingest: Ingest = Field(default_factory=Ingest)
    schedule: Schedule = Field(default_factory=Schedule)
    verdict: Verdict = Field(default_factory=Verdict)
    # Suites run in a workspace of their own (suites/<name>/, `make suite`), not in `make run`.
    suites: dict[str, Suite] = Field(default_factory=dict)

    @field_validator("datasets", "suites")
    @classmethod
    def _names_are_path_safe(cls, value, info):
        what = info.field_name.removesuffix("s")  # dataset, suite
        seen = {}
        for name in value:
            problem = name_problem(name)
            if problem:
                raise ValueError(f"{what} name {name!r}: {problem}")
            # Case-insensitive file systems (macOS, Windows) would put both in one file.
            if name.lower() in seen:
                raise ValueError(f"{what} names {seen[name.lower()]!r} and {name!r} differ only in case")
            seen[name.lower()] = name
        return value

    @model_validator(mode="after")
    def _overrides_are_valid(self) -> Params:
        """Each suite's and dataset's `train:` over the global one makes a valid budget and search
        (the same validators as the global `train:`); errors name the section that breaks them."""
        for suite_name, suite in self.suites.items():
            _check_merged(f"suites.{suite_name}.train", [suite.train], self)
        for name in self.datasets:
            _check_merged(f"datasets.{name}.train", self.overrides(name), self)
        return self

    @model_validator(mode="after")
    def _kfold_where_it_works(self) -> Params:
        for name, dataset in self.datasets.items():
            if self.budget(name).validation != "kfold":
                continue
            if not KINDS[dataset.kind].CROSS_VALIDATES:
                raise ValueError(
                    f"datasets.{name}: validation: kfold needs a classification dataset; "
                    f"a {dataset.kind} dataset validates on the period after its training data "
                    "(holdout)"
                )
            if not self.search(name).trials:
                raise ValueError(
                    f"datasets.{name}: validation: kfold needs train.search.trials >= 1 "
                    "(the folds choose each cell's epoch count)"
                )
        return self

    @model_validator(mode="after")
    def _suites_keep_the_protocol(self) -> Params:
        check_suite_protocol(self)  # at least 5 seeds, the same trials on every member
        return self

    @model_validator(mode="after")
    def _suites_name_declared_datasets(self) -> Params:
        declared = ", ".join(self.datasets)
        for suite_name, suite in self.suites.items():
            for name in suite.datasets:
                if name not in self.datasets:
                    raise ValueError(
                        f"suites.{suite_name}.datasets: '{name}' is not a declared dataset; "
                        f"params.yaml declares: {declared}"
                    )
        for name in self.datasets:
            shaping = [s for s, suite in self.suites.items() if name in suite.datasets and suite.sets_train()]
            if len(shaping) > 1:
                raise ValueError(
                    f"suites: {', '.join(shaping)} all set `train:` for dataset '{name}'; "
                    "only one suite of a dataset may shape its budget"
                )
        return self

    def sources(self) -> list[str]:
        """Every source string params.yaml names (a split's included)."""
        found = []
        for dataset in self.datasets.values():
            found += list(dataset.source.values()) if isinstance(dataset.source, dict) else [dataset.source]
        return found

    def dataset(self, name: str):
        try:
            return self.datasets[name]
        except KeyError:
            known = ", ".join(self.datasets) or "none"
            raise ConfigError(f"unknown dataset '{name}'; params.yaml declares: {known}") from None

    def budget(self, name: str) -> Budget:
        """The global budget with the dataset's own overrides applied (before any search)."""
        return self.merged_budget(self.overrides(name))

    def search(self, name: str) -> Search:
        """The global search settings with the dataset's own merged in (its space key by key)."""
        return self.merged_search(self.overrides(name))

    def merged_budget(self, overrides: list[DatasetTraining]) -> Budget:
        fields = {k: getattr(self.train, k) for k in Budget.model_fields}
        for own in overrides:
            fields.update(own.model_dump(exclude_none=True, exclude={"search"}))
        return Budget(**fields)

    def merged_search(self, overrides: list[DatasetTraining]) -> Search:
        merged = self.train.search.model_dump()
        for override in overrides:
            own = override.search.model_dump(exclude_none=True)
            merged["space"] = {**merged["space"], **own.pop("space", {})}
            merged.update(own)
        return Search(**merged)

    def rope(self, name: str, metric: str) -> tuple[float, bool]:
        """Dataset `name`'s region of practical equivalence for `metric`: (value, relative), from its
        own `verdict.rope`, else the global one, else ROPE_DEFAULTS."""
        for rope in (self.dataset(name).verdict.rope, self.verdict.rope, ROPE_DEFAULTS):
            if metric in rope:
                return parse_rope(rope[metric])
        raise ConfigError(
            f"verdict.rope: no width for metric '{metric}' (datasets.{name}); add one, e.g. {metric}: 0.01"
        )

    def overrides(self, name: str) -> list[DatasetTraining]:
        """The `train:` sections over the global one for dataset `name`, weakest first: its
        suite's (shared by the suite's datasets), then its own."""
        shared = [suite.train for suite in self.suites.values() if name in suite.datasets]
        return [*shared, self.dataset(name).train]


def name_problem(name: str) -> str | None:
    """What is wrong with a dataset or suite name, or None (see NAME)."""
    import re

    if not isinstance(name, str) or not re.fullmatch(NAME, name):
        return "use only letters, digits, '_' and '-', starting with a letter or digit (no dots or spaces)"
    if len(name) > NAME_MAX:
        return f"at most {NAME_MAX} characters (it has {len(name)})"
    return None


def _check_merged(where: str, overrides: list, params: Params) -> None:
    """Raise a ValueError naming `where` when `overrides` over the global `train:` do not make a
    valid budget and search."""
    for merge, section in ((params.merged_budget, ""), (params.merged_search, ".search")):
        try:
            merge(overrides)
        except ValidationError as exc:
            problems = "; ".join(_format_error(e) for e in exc.errors(include_url=False))
            raise ValueError(f"{where}{section}: {problems}") from None


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
        params = Params.model_validate(data)
    except ValidationError as exc:
        lines = [_format_error(e) for e in exc.errors()]
        raise ConfigError(f"{origin}: " + "; ".join(lines)) from None
    register_sources(params.sources())  # masked in every message and log line from now on
    return params


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
        bound_aliases(text, path)
        data = yaml.safe_load(text)
    except RecursionError:
        raise ConfigError(f"{path}: nested too deeply to read") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise ConfigError(f"{path}: not valid YAML{where}") from None
    for key, value in unquoted_dates(data):
        raise ConfigError(
            f"{path}: {key}: {value} is an unquoted YAML date, which DVC cannot read as a param; "
            f'write it in quotes: "{value}"'
        )
    return parse_params(data, str(path))


def unquoted_dates(node, key: str = ""):
    """(dotted key, value) of each YAML date or timestamp in `node`: YAML reads 1991-07-01 as a
    date, and `dvc repro` stops on it ("Unsupported value of type 'date'")."""
    import datetime

    if isinstance(node, datetime.date):
        yield key, node.isoformat()
    elif isinstance(node, dict):
        for name, value in node.items():
            yield from unquoted_dates(value, f"{key}.{name}" if key else str(name))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from unquoted_dates(value, f"{key}[{index}]")


# What params.yaml may expand to, counted in YAML nodes (scalars, lists, mappings) with every
# alias expanded: far beyond any real params file, far below a "billion laughs".
MAX_EXPANDED_NODES = 100_000


def bound_aliases(text: str, path: Path) -> None:
    """Refuse params.yaml when its aliases (*name) would expand it past MAX_EXPANDED_NODES, or an
    alias refers to a node that holds it. Counted on the composed node graph, where an alias is a
    second reference to one node: nothing is expanded to count. (PyYAML writes aliases itself
    when one object appears twice, so they are allowed within the bound.)"""
    import yaml

    root = yaml.compose(text, Loader=yaml.SafeLoader)
    sizes: dict[int, int] = {}
    open_nodes: set[int] = set()

    def size(node) -> int:
        key = id(node)
        if key in open_nodes:
            raise ConfigError(f"{path}: line {node.start_mark.line + 1}: a YAML alias refers to a node that holds it")
        if key not in sizes:
            open_nodes.add(key)
            children = [n for pair in node.value for n in pair] if isinstance(node, yaml.MappingNode) else (
                node.value if isinstance(node, yaml.SequenceNode) else [])  # fmt: skip
            sizes[key] = 1 + sum(size(child) for child in children)
            open_nodes.discard(key)
        return sizes[key]

    if root is not None and size(root) > MAX_EXPANDED_NODES:
        raise ConfigError(
            f"{path}: its YAML aliases (*name) expand it to more than {MAX_EXPANDED_NODES:,} values; "
            "write the values out"
        )


# ---- a suite keeps the protocol (DESIGN, "A fair comparison") ----------------------------------

# A suite's answer across datasets rests on each dataset's own: none of them may be cut below the
# protocol, or the budget, not the cells, could be why one wins (design point 10).
MIN_SUITE_SEEDS = 5


def check_suite_protocol(params) -> None:
    """Raise a ValueError that names the key where a suite of `params` (Params) runs below the
    protocol. Here, not in settings.py: settings.py is part of every run's code digest.

    - Seeds: at least MIN_SUITE_SEEDS (`train.seeds`; `auto` gives 5 or 10). Only the global
      `train:` holds seeds, so this is the one key to name.
    - Trials: the same per cell on every dataset. Within a dataset the cells cannot differ:
      `search.trials` is one number that each cell's study runs (stages/search.py); a mapping
      of cell to trials is refused as not a whole number. Across a suite's datasets they can: a dataset's own
      `train.search.trials` overrides the suite's. That dataset's cells would be tuned with
      another budget than the rest of the suite's, so its answer would not count the same."""
    for name, suite in params.suites.items():
        _enough_seeds(name, params.train.seeds)
        _same_trials(name, suite, params)


def _enough_seeds(suite: str, seeds) -> None:
    if seeds == "auto":
        return
    count = len(seeds) if isinstance(seeds, list) else seeds
    if count < MIN_SUITE_SEEDS:
        raise ValueError(
            f"train.seeds: {count} seed(s), but suite '{suite}' needs at least {MIN_SUITE_SEEDS} "
            f"(the protocol's minimum: each seed's score is shown, and fewer cannot tell the cells "
            f"from seed noise); set seeds: {MIN_SUITE_SEEDS} or auto"
        )


def _same_trials(suite_name: str, suite, params) -> None:
    # An undeclared member is the declared-datasets check's to name (config.py), not this one's.
    members = [name for name in suite.datasets if name in params.datasets]
    trials = {name: params.search(name).trials for name in members}
    if len(set(trials.values())) <= 1:
        return
    shared = params.merged_search([suite.train]).trials  # what the suite gives each member
    odd = [name for name, count in trials.items() if count != shared]
    keys = list(dict.fromkeys(_trials_key(name, params) for name in odd))  # each key once
    also = f" (also {', '.join(keys[1:])})" if len(keys) > 1 else ""
    raise ValueError(
        f"{keys[0]}: {trials[odd[0]]} trials per cell for dataset '{odd[0]}', but suite "
        f"'{suite_name}' searches its datasets with {shared}{also}; every dataset of a suite gets "
        f"the same trials per cell: set them once, in suites.{suite_name}.train.search.trials"
    )


def _trials_key(name: str, params) -> str:
    """The params key a dataset's search trials come from: its own `train:`, else a suite's."""
    if params.dataset(name).train.search.trials is not None:
        return f"datasets.{name}.train.search.trials"
    for suite_name, suite in params.suites.items():
        if name in suite.datasets and suite.train.search.trials is not None:
            return f"suites.{suite_name}.train.search.trials"
    return "train.search.trials"
