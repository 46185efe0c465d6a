"""Test data and a throwaway project: data frames of each kind, params blocks, the CLI runner."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pandas as pd
import yaml
from typer.testing import CliRunner

from seqbench.cli import app


class Project:
    """A project root in a temp folder: params.yaml plus source files beside it."""

    def __init__(self, root: Path):
        self.root = root

    def params(self, datasets: dict) -> Path:
        path = self.root / "params.yaml"
        path.write_text(yaml.safe_dump({"datasets": datasets}, sort_keys=False))
        return path

    def write(self, name: str, content) -> Path:
        path = self.root / name
        if isinstance(content, pd.DataFrame):
            if name.endswith(".parquet"):
                content.to_parquet(path, index=False)
            elif name.endswith(".jsonl"):
                content.to_json(path, orient="records", lines=True, date_format="iso")
            else:
                content.to_csv(path, index=False)
        elif isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
        return path

    def run(self, *args: str):
        """Run `seqbench ARGS --params <this project's params.yaml>` in-process."""
        # A wide terminal, so rich tables don't wrap the cells the tests read.
        result = CliRunner(env={"COLUMNS": "200"}).invoke(app, [*args, "--params", str(self.root / "params.yaml")])
        return result

    def read(self, folder: str, name: str) -> pd.DataFrame:
        return pd.read_parquet(self.root / "data" / folder / f"{name}.parquet")

    def exists(self, relative: str) -> bool:
        return (self.root / relative).exists()


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def stock_frame(days: int = 30, symbol: str | None = None, start: str = "2020-01-01") -> pd.DataFrame:
    """A clean daily OHLCV table on business days."""
    dates = pd.bdate_range(start, periods=days)
    close = 100 + pd.Series(range(days), dtype="float64")
    frame = pd.DataFrame(
        {
            "date": dates.strftime("%Y-%m-%d"),
            "open": close - 0.5,
            "high": close + 1.0,
            "low": close - 1.0,
            "close": close,
            "volume": 1000.0,
        }
    )
    if symbol is not None:
        frame.insert(1, "symbol", symbol)
    return frame


def text_frame(n: int = 20) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "review": [f"review number {i} was {'great' if i % 2 else 'meh'}" for i in range(n)],
            "score": ["great" if i % 2 else "other" for i in range(n)],
        }
    )


def video_frame(clips: int = 6, frames: int = 12, dims: int = 2) -> pd.DataFrame:
    rows = []
    for c in range(clips):
        for t in range(frames):
            row = {"clip_id": f"c{c}", "frame": t, "label": "a" if c % 2 else "b"}
            row.update({f"f_{d}": float(c + t * 0.1 + d) for d in range(dims)})
            rows.append(row)
    return pd.DataFrame(rows)


STOCK = {"kind": "stock", "source": "prices.csv", "max_quarantine_fraction": 1.0}


TEXT = {
    "kind": "text",
    "source": "reviews.csv",
    "columns": {"text": "review", "label": "score"},
    "labels": ["great", "other"],
    "max_quarantine_fraction": 1.0,
}


VIDEO = {"kind": "video", "source": "clips.csv", "min_frames": 2, "max_quarantine_fraction": 1.0}


def assert_clean_failure(result, *fragments: str) -> None:
    """A user error: exit 1, a message naming the problem, and no traceback."""
    output = result.output
    assert result.exit_code == 1, f"exit {result.exit_code}: {output}\n{result.exception!r}"
    assert "Traceback" not in output
    assert "error:" in output
    for fragment in fragments:
        assert fragment in output, f"{fragment!r} not in {output!r}"


TINY_TRAIN = {
    "seeds": [0, 1],
    "max_epochs": 3,
    "patience": 3,
    "batch_size": 16,
    "hidden_size": 4,
    "size_match": "hidden",
    "runner": "sequential",
    "workers": 2,
    "retries": 0,
}


def random_walk_prices(days: int = 160, seed: int = 0) -> pd.DataFrame:
    import numpy as np

    rng = np.random.default_rng(seed)
    frame = stock_frame(days)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, days)))
    frame["close"] = close
    frame["open"] = close * (1 + rng.normal(0, 0.002, days))
    frame["high"] = np.maximum(frame["open"], close) * 1.005
    frame["low"] = np.minimum(frame["open"], close) * 0.995
    return frame


def fixed_search(project, name: str = "toy") -> None:
    """The search stage's result without trials: params.yaml's budget for every cell (rerun it
    after changing the budget, as `dvc repro` would)."""
    from seqbench.stages.search import write_result

    write_result(name, project.root / "params.yaml", {})


def assert_verdicts_agree(result: dict) -> None:
    """On every comparison of an evaluation, the interval, the p-value and the verdict tell one
    story (stats.VERDICT_RULE): a winner's interval lies beyond the ROPE on its side with Holm
    p < ALPHA; "equivalent" lies inside the ROPE; "undecided" is neither; the verdict's p is the
    bootstrap's Holm p, and the interval holds the difference of the seed means it reports."""
    from seqbench.metrics import HIGHER_IS_BETTER
    from seqbench.stats import ALPHA

    rope = result["rope"]["width"]
    higher = HIGHER_IS_BETTER[result["rope"]["metric"]]
    for c in result["comparisons"]:
        effect, verdict = c["effect"], c["verdict"]
        where = f"{result['dataset']}: {c['a']} vs {c['b']}"
        assert effect["low"] <= effect["difference"] <= effect["high"], where
        if c.get("void"):  # left out of the Holm family: it decides nothing
            assert verdict["answer"] == "void" and verdict["winner"] is None and effect["p_holm"] is None, where
            continue
        assert verdict["p_value"] == effect["p_holm"] >= effect["p_value"], where
        beyond_b = effect["low"] > rope if higher else effect["high"] < -rope
        beyond_a = effect["high"] < -rope if higher else effect["low"] > rope
        inside = -rope < effect["low"] and effect["high"] < rope
        expected = (
            "b_better"
            if beyond_b and verdict["p_value"] < ALPHA
            else "a_better"
            if beyond_a and verdict["p_value"] < ALPHA
            else "equivalent"
            if inside
            else "undecided"
        )
        if c.get("still_improving"):  # a cell cut off by max_epochs: at most undecided
            assert verdict["answer"] == "undecided" and verdict["winner"] is None, where
            assert verdict.get("uncapped", expected) == expected, where
            continue
        assert verdict["answer"] == expected, where
        winner = {"a_better": c["a"], "b_better": c["b"]}.get(expected)
        assert verdict["winner"] == winner, where
