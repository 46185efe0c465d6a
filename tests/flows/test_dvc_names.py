"""Dataset names through real DVC: the longest name the rule allows, with every character it
allows, runs its stages under `dvc repro`, and its files land where Paths says."""

from __future__ import annotations

import sys

from helpers import random_walk_prices
from processes import TINY_DVC, dvc_project, run_command
from seqbench.config import NAME_MAX


def test_the_longest_allowed_name_runs_through_dvc_repro(tmp_path):
    name = ("Prices_2020-daily-" * 4)[: NAME_MAX - 1] + "9"  # letters, digits, '_' and '-', 64 long
    assert len(name) == NAME_MAX
    params = {**TINY_DVC, "datasets": {name: TINY_DVC["datasets"]["prices"]}}
    root = tmp_path / "project"
    env = dvc_project(root, params, {"prices.csv": random_walk_prices(120)})
    run_command([sys.executable, "-m", "seqbench", "datasets"], root, env)
    output = run_command(["dvc", "repro", f"prepare@{name}"], root, env, timeout=600)
    assert f"Running stage 'validate@{name}'" in output
    for path in (f"data/raw/{name}.parquet", f"reports/validation/{name}.json", f"data/prepared/{name}/arrays.npz"):
        assert (root / path).is_file(), path
    status = run_command(["dvc", "status", f"prepare@{name}"], root, env)
    assert f"prepare@{name}" not in status  # up to date: DVC reads the name back as it wrote it
