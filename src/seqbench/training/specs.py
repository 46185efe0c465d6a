"""What travels together into a run or a trial: small frozen records, so that a run computes
from its spec alone, here or on a Dask worker that shares no disk with the project."""

from __future__ import annotations

from dataclasses import dataclass

from seqbench.training.prepared import Prepared


@dataclass(frozen=True)
class RunSpec:
    """One training run: a (dataset, cell, seed) with its cell's chosen budget, on its prepared
    data. `cross_validation`: the search's folds behind a k-fold budget (the final fit holds
    nothing out, so its validation scores are the folds'); None for a holdout budget."""

    dataset: str
    cell: str
    seed: int
    budget: object  # settings.Budget
    prepared: Prepared
    cross_validation: dict | None = None
    threads: int = 1
    numerics: str = "native"  # train.numerics: native | portable (numerics.py)

    @property
    def label(self) -> str:
        return f"{self.dataset} {self.cell} seed{self.seed}"


@dataclass(frozen=True)
class TrialSpec:
    """One search trial: a cell's `number`-th configuration (`budget`: the dataset's budget with
    the sampled values), the search settings, and `history`, the trials finished before this
    one's round, which its pruner compares it with."""

    dataset: str
    cell: str
    number: int
    budget: object  # settings.Budget
    setting: object  # settings.Search
    history: list
    prepared: Prepared
    threads: int = 1
    numerics: str = "native"  # train.numerics: native | portable (numerics.py)

    @property
    def label(self) -> str:
        return f"{self.dataset} {self.cell} trial {self.number}"
