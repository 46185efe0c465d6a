"""The report's "Run" block: what produced these numbers (code, params, packages, machine)."""

from __future__ import annotations

import hashlib
from datetime import datetime, timezone
from pathlib import Path

PACKAGES = [
    "seqbench",
    "torch",
    "pytorch-lightning",
    "prefect",
    "dvc",
    "great-expectations",
    "pandas",
    "scikit-learn",
    "scipy",
    "aeon",
    "plotly",
    "optuna",
]


def run_metadata(root: Path, params_path: Path, params) -> dict:
    import os
    import platform

    return {
        "revision": git_revision(root),
        "params_sha256": hashlib.sha256(params_path.read_bytes()).hexdigest()[:16],
        "versions": package_versions(),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPU cores, {platform.system()} {platform.release()}",
        # Fixed per run so that results do not depend on the machine (DESIGN: a fair comparison, 5).
        "threads": params.train.threads,
        "gpu": gpu_name(),
        "python": platform.python_version(),
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    }


def git_revision(root: Path) -> str:
    import subprocess

    try:
        revision = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=root,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "not a git checkout"
    return revision + (" (uncommitted changes)" if dirty else "")


def package_versions() -> dict:
    from importlib import metadata

    versions = {}
    for package in PACKAGES:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = "not installed"
    return versions


def gpu_name() -> str:
    import torch

    return torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none"
