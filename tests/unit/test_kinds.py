"""The kind contract: every registered kind provides what the stages ask of it, and works end
to end on tiny data (canonical table -> checks -> prepared arrays -> a model's outputs ->
scores, baselines and predictions). A new kind gets these tests by its registry line."""

import ast
import inspect
import json
import subprocess
import sys
from pathlib import Path
from typing import get_args

import numpy as np
import pandas as pd
import pytest

import seqbench.kinds
from helpers import STOCK, TEXT, VIDEO, random_walk_prices, text_frame, video_frame
from seqbench.errors import ConfigError
from seqbench.kinds import KINDS, get_kind
from seqbench.kinds.base import Check, Scorer

# What the stages ask of a kind -> the number of arguments, for the functions.
# config.py: SETTINGS. ingest: canonicalize. validate: COLUMNS, GROUP_KEY, add_check_columns,
# checks, summary. prepare: TASK, prepare. config: CROSS_VALIDATES. evaluate: scorer, baselines, describe_test.
# predict: predict_inputs, format_predictions. report: report_figures.
# scorer and baselines take a last `split` ("test" by default, or "val"; see SPLIT_DEFAULTS).
FUNCTIONS = {
    "canonicalize": 2,
    "add_check_columns": 2,
    "checks": 2,
    "summary": 2,
    "prepare": 2,
    "scorer": 3,
    "baselines": 4,
    "describe_test": 2,
    "predict_inputs": 2,
    "format_predictions": 3,
    "report_figures": 1,
}
CONSTANTS = ("SETTINGS", "COLUMNS", "GROUP_KEY", "TASK", "CROSS_VALIDATES")
# Functions whose last argument is the split they give outputs or scores for, "test" unless told.
SPLIT_DEFAULTS = ("scorer", "baselines")
# The tasks the models and batching are built for (models.build_model, models.datasets_for).
TASKS = ("forecast", "classify")
# Modules of seqbench.kinds that are not kinds themselves: what kinds share (base, classify) and the
# stock kind's two targets (returns, volatility).
SHARED = {"base", "classify", "returns", "volatility"}
# Stage modules import the kinds; a kind importing one of them would make a cycle.
STAGES = {"config", "ingest", "validate", "prepare", "evaluate", "predict", "cost", "train", "search", "cli"}


def test_every_kind_module_is_registered_and_every_name_resolves():
    import pkgutil

    modules = {m.name for m in pkgutil.iter_modules(seqbench.kinds.__path__)} - SHARED
    assert modules == set(KINDS), "a kind module missing from KINDS, or a shared module missing from SHARED"
    for name, module in KINDS.items():
        assert get_kind(name) is module and module.__name__ == f"seqbench.kinds.{name}"
    with pytest.raises(ConfigError, match="unknown kind 'audio'; the kinds are: stock, text, video"):
        get_kind("audio")


@pytest.mark.parametrize("name", KINDS)
def test_a_kind_has_every_member_the_stages_use(name):
    from seqbench.settings import DatasetBase

    kind = KINDS[name]
    missing = [m for m in (*CONSTANTS, *FUNCTIONS) if not hasattr(kind, m)]
    assert not missing, f"kind {name} lacks {', '.join(missing)}"
    for function, arguments in FUNCTIONS.items():
        assert len(inspect.signature(getattr(kind, function)).parameters) == arguments, function
    for function in SPLIT_DEFAULTS:
        split = inspect.signature(getattr(kind, function)).parameters["split"]
        assert split.default == "test", f"{function}'s split defaults to the test split"
    assert issubclass(kind.SETTINGS, DatasetBase)
    assert get_args(kind.SETTINGS.model_fields["kind"].annotation) == (name,), "its `kind` literal is its registry key"
    assert set(kind.SETTINGS.MAPPABLE) <= set(kind.COLUMNS)
    assert kind.GROUP_KEY is None or kind.GROUP_KEY in kind.COLUMNS
    assert kind.TASK in TASKS


def test_params_yaml_offers_exactly_the_registered_kinds():
    from seqbench.config import Params

    union = get_args(get_args(Params.model_fields["datasets"].annotation)[1])[0]
    assert set(get_args(union)) == {kind.SETTINGS for kind in KINDS.values()}


@pytest.mark.parametrize("name", sorted([*KINDS, *SHARED]))
def test_kind_modules_import_no_stage_module(name):
    tree = ast.parse(Path(seqbench.kinds.__file__).with_name(f"{name}.py").read_text())
    imported = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}
    imported |= {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    assert not {m for m in imported if m.removeprefix("seqbench.") in STAGES}


def test_importing_the_config_stays_cheap():
    """The kinds' modules are imported with the config (every CLI command): their heavy
    libraries must load inside the functions that need them."""
    heavy = ("pandas", "numpy", "torch", "sklearn", "great_expectations", "aeon", "scipy")
    code = f"import sys, seqbench.config; print([m for m in {heavy!r} if m in sys.modules])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


# ---- the contract on tiny data ------------------------------------------------------------------

# Kind -> cases: (settings, the source table, a table to predict for). A new kind needs one here.
TINY = {
    "stock": [
        ({**STOCK, "lookback": 5}, lambda: random_walk_prices(120), lambda: random_walk_prices(20, seed=5)),
        (
            {**STOCK, "lookback": 5, "target": "volatility", "horizon": 2},
            lambda: random_walk_prices(160),
            lambda: random_walk_prices(20, seed=5),
        ),
    ],
    "text": [
        (
            {**TEXT, "min_freq": 1},
            lambda: text_frame(40),
            lambda: pd.DataFrame({"text": ["review number 3 was great", "meh"]}),
        )
    ],
    "video": [
        (VIDEO, lambda: video_frame(clips=12, frames=6), lambda: video_frame(clips=2, frames=5).drop(columns="label"))
    ],
}
CASES = [pytest.param(name, i, id=f"{name}-{i}") for name in KINDS for i in range(max(len(TINY.get(name, [])), 1))]


@pytest.mark.parametrize("name, case", CASES)
def test_a_kind_runs_end_to_end_on_tiny_data(name, case, tmp_path):
    from seqbench.config import parse_params

    assert name in TINY, f"add tiny data for kind {name} to TINY"
    kind = KINDS[name]
    settings, source, new = TINY[name][case]
    cfg = parse_params({"datasets": {"tiny": settings}}).dataset("tiny")
    assert isinstance(cfg, kind.SETTINGS)

    df = kind.canonicalize({key: source() for key in cfg.sources()}, cfg)
    validated = checked_and_summarised(kind, df, cfg)
    validated.to_parquet(tmp_path / "validated.parquet")
    arrays, meta = kind.prepare(validated, cfg)
    assert meta["task"] == kind.TASK
    assert all(meta["sizes"][split] > 0 for split in ("train", "val", "test"))
    json.dumps(meta)  # meta.json

    model = tiny_model(arrays, meta)
    outputs = {split: predicted(model, arrays, meta, split) for split in ("val", "test")}
    assert len(outputs["test"]) == meta["sizes"]["test"]
    scored(kind, arrays, meta, outputs, tmp_path / "validated.parquet")

    dataset, rows = kind.predict_inputs(new(), meta)
    from seqbench.training.predict import predict_outputs

    table = kind.format_predictions(rows, predict_outputs(model, dataset), meta)
    assert len(table) == len(rows) > 0


def checked_and_summarised(kind, df, cfg):
    """The validate stage's use of a kind; returns the table as validation would pass it on."""
    assert set(kind.COLUMNS) <= set(df.columns)
    assert len(kind.add_check_columns(df, cfg)) == len(df)
    checks = kind.checks(cfg, df)
    assert checks and all(isinstance(c, Check) and c.level in ("row", "table") for c in checks)
    assert len({c.name for c in checks}) == len(checks), "check names name quarantine reasons: unique"
    json.dumps(kind.summary(df, cfg))  # part of the validation report
    return df


def tiny_model(arrays, meta):
    from seqbench.config import Budget
    from seqbench.models import build_model

    budget = Budget(size_match="hidden", hidden_size=4, embedding_size=4)
    return build_model(meta, "gru", budget, arrays).eval()


def predicted(model, arrays, meta, split):
    from seqbench.models import datasets_for
    from seqbench.training.predict import predict_outputs

    return predict_outputs(model, datasets_for(arrays, meta, (split,))[split])


def scored(kind, arrays, meta, outputs, validated_path):
    """The evaluate stage's use of a kind: its scorer, its baselines, its test descriptions."""
    from seqbench.metrics import HIGHER_IS_BETTER
    from seqbench.stages.evaluate import assemble

    scorer = kind.scorer(arrays, meta)
    members = [*Scorer.__annotations__, *(m for m in vars(Scorer) if not m.startswith("_"))]
    assert all(hasattr(scorer, m) for m in members), "a scorer has every member of kinds.base.Scorer"
    assert scorer.primary in HIGHER_IS_BETTER
    test = outputs["test"]
    if scorer.calibrates:
        test = scorer.calibrate(("gru", 0), test, outputs["val"])
    assert scorer.primary in scorer.scores(test)
    baselines = kind.baselines(arrays, meta, validated_path)
    assert baselines and all(len(b) == len(test) for b in baselines.values())
    # On validation: the same baselines (fit on the training split), scored by a scorer of the
    # validation split with the same metrics and primary, where the best baseline is chosen.
    on_val = kind.baselines(arrays, meta, validated_path, split="val")
    assert list(on_val) == list(baselines)
    assert all(len(b) == meta["sizes"]["val"] for b in on_val.values())
    val_scorer = kind.scorer(arrays, meta, split="val")
    assert val_scorer.primary == scorer.primary and val_scorer.calibrates == scorer.calibrates
    for name, output in on_val.items():
        if val_scorer.calibrates:
            output = val_scorer.calibrate(name, output, output)
        assert set(val_scorer.scores(output)) == set(scorer.scores(test)), name
    if scorer.calibrates:  # every model alike: the baselines too, on their validation outputs
        baselines = {name: scorer.calibrate(name, out, on_val[name]) for name, out in baselines.items()}
    runs = {(cell, seed): test + 0.01 * seed for cell in ("lstm", "gru") for seed in (0, 1)}
    best = {"name": next(iter(baselines)), "metric": scorer.primary, "validation_scores": {}}
    cells = ["lstm", "gru"]
    result, table = assemble("tiny", "x", meta, scorer, runs, baselines, cells, [0, 1], best, (0.01, False))
    assert len(table) == len(test)
    assert {c["metric"] for c in result["comparisons"]} == {scorer.primary}
    assert all("p_holm" in c["effect"] and c["verdict"]["answer"] for c in result["comparisons"])
    assert isinstance(scorer.confusion_tables(table, ["lstm", *baselines]), dict)
    examples = kind.describe_test(arrays, validated_path)
    assert examples is None or len(examples) == len(test)
    json.dumps(result, default=float)  # the eval JSON
    assert np.isfinite(result["models"]["lstm"]["ensemble"][scorer.primary])
