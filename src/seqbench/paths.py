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
        return self.root / "reports" / "train" / f"{name}.json"

    def suite_result(self, name: str) -> Path:
        """A suite's statistics across its datasets (suite.py), read by the report."""
        return self.root / "reports" / "suite" / f"{name}.json"
