"""Where each stage reads and writes, relative to the project root (the folder of params.yaml).

dvc.yaml names the same paths; keep the two in step.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Paths:
    root: Path

    def raw(self, name: str) -> Path:
        return self.root / "data" / "raw" / f"{name}.parquet"

    def manifest(self, name: str) -> Path:
        return self.root / "data" / "raw" / f"{name}.manifest.json"

    def validated(self, name: str) -> Path:
        return self.root / "data" / "validated" / f"{name}.parquet"

    def quarantine(self, name: str) -> Path:
        return self.root / "data" / "quarantine" / f"{name}.parquet"

    def validation_report(self, name: str) -> Path:
        return self.root / "reports" / "validation" / f"{name}.json"

    def data_docs(self, name: str) -> Path:
        return self.root / "reports" / "validation" / name

    def prepared(self, name: str) -> Path:
        return self.root / "data" / "prepared" / name

    def models(self, name: str) -> Path:
        return self.root / "models" / name

    def runs(self, name: str) -> Path:
        return self.models(name) / "runs"

    def run_dir(self, name: str, cell: str, seed: int) -> Path:
        return self.runs(name) / cell / f"seed{seed}"

    def study(self, name: str) -> Path:
        """The search's Optuna studies (one journal per cell); kept so a killed search resumes."""
        return self.models(name) / "search"

    def search_result(self, name: str) -> Path:
        """The chosen configuration per cell and every trial: small, in git, read by training."""
        return self.root / "reports" / "search" / f"{name}.json"

    def train_summary(self, name: str) -> Path:
        """The train stage's summary of every run (a DVC metrics file)."""
        return self.root / "reports" / "train" / f"{name}.json"

    def train_curves(self, name: str) -> Path:
        """learning_curves.csv (every run, every epoch) and curves/<cell>.csv (DVC plots)."""
        return self.root / "reports" / "train" / name

    def evaluation(self, name: str) -> Path:
        """The evaluate stage's result: every model and baseline, tests, verdicts, costs."""
        return self.root / "reports" / "eval" / f"{name}.json"

    def predictions(self, name: str) -> Path:
        return self.root / "reports" / "eval" / name / "predictions.csv"

    def headline(self, name: str) -> Path:
        """The headline numbers of a dataset (a DVC metrics file)."""
        return self.root / "reports" / "metrics" / f"{name}.json"

    def confusion(self, name: str) -> Path:
        return self.root / "reports" / "plots" / "confusion" / name

    def setups(self, name: str) -> Path:
        """The set-ups tried on a dataset, kept by hand (optional)."""
        return self.root / "reports" / "setups" / f"{name}.yaml"

    def report(self) -> Path:
        return self.root / "reports" / "index.html"

    def suite_result(self, name: str) -> Path:
        """A suite's statistics across its datasets (suite.py), read by the report."""
        return self.root / "reports" / "suite" / f"{name}.json"
