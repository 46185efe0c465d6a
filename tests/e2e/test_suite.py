"""Suites: the statistics across datasets (suite.py) against scipy and aeon, the config errors,
the generated workspace pipeline, and one tiny suite through DVC to the report in Chromium."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest
import yaml

from chromium import check_in_browser
from helpers import assert_clean_failure, random_walk_prices, video_frame
from processes import REPO, dvc_project, run_command
from seqbench.errors import SeqbenchError
from seqbench.stages.suite import cliques, suite_statistics

VIDEO = {"kind": "video", "source": "aeon:GunPoint"}


def evaluation(lstm, gru, baselines, winner=None, metric="macro_f1", void=False, answer=None, rope=0.01):
    """The parts of a reports/eval/<name>.json that a suite reads: LSTM vs GRU with `answer` (by
    default the winner's, else undecided), and each cell against the first baseline (the best)."""
    answer = "void" if void else answer or {"lstm": "a_better", "gru": "b_better"}.get(winner, "undecided")
    words = {"a_better": "lstm is better", "b_better": "gru is better", "equivalent": "practically equivalent"}
    verdict = {
        "answer": answer,
        "winner": winner,
        "text": words.get(answer, answer),
        "p_value": 0.01 if winner else 0.4,
        "rope": rope,
    }
    best = next(iter(baselines), None)
    return {
        "cells": ["lstm", "gru"],
        "baselines": list(baselines),
        "best_baseline": {"name": best},
        "models": {
            "lstm": {"baseline": False, "summary": {metric: {"mean": lstm}}},
            "gru": {"baseline": False, "summary": {metric: {"mean": gru}}},
            **{b: {"baseline": True, "scores": {metric: v}} for b, v in baselines.items()},
        },
        "comparisons": [
            {
                "a": "lstm",
                "b": "gru",
                "metric": metric,
                "verdict": verdict,
                "effect": {
                    "difference": gru - lstm,
                    "low": gru - lstm - 0.02,
                    "high": gru - lstm + 0.02,
                    "p_holm": 0.3,
                },
                **({"void": "x"} if void else {}),
            },
            *(
                [
                    against(cell, score, best, baselines[best], metric, rope)
                    for cell, score in (("lstm", lstm), ("gru", gru))
                ]
                if best
                else []
            ),
        ],
        "cost": {
            c: {"train_seconds": {"mean": 2.0 + i}, "trainable_parameters": 100} for i, c in enumerate(("lstm", "gru"))
        },
    }


def against(cell, score, baseline, value, metric, rope):
    """A cell against the best baseline: the baseline better beyond the ROPE, the cell better, or equivalent."""
    difference = value - score
    winner = baseline if difference > rope else cell if difference < -rope else None
    answer = {baseline: "b_better", cell: "a_better"}.get(winner, "equivalent")
    text = f"{winner} is better" if winner else "practically equivalent"
    return {
        "a": cell,
        "b": baseline,
        "metric": metric,
        "verdict": {"answer": answer, "winner": winner, "text": text, "p_value": 0.01, "rope": rope},
        "effect": {"difference": difference, "low": difference - 0.01, "high": difference + 0.01, "p_holm": 0.01},
    }


SCORES = {  # dataset -> lstm, gru, nn_dtw, majority (macro-F1)
    "a": (0.91, 0.88, 0.80, 0.33),
    "b": (0.72, 0.75, 0.70, 0.30),
    "c": (0.65, 0.60, 0.66, 0.25),
    "d": (0.99, 0.97, 0.95, 0.50),
    "e": (0.55, 0.58, 0.40, 0.20),
    "f": (0.81, 0.70, 0.78, 0.10),
}
WINNERS = {"a": "lstm", "b": None, "c": "lstm", "d": None, "e": "gru", "f": "lstm"}
ANSWERS = {"d": "equivalent"}  # the others: their winner's, or undecided (b)


def suite_of(scores=SCORES, winners=WINNERS, metric="macro_f1", answers=ANSWERS, ropes=None):
    evaluations = {
        name: evaluation(
            lstm, gru, {"nn_dtw": dtw, "majority": majority}, winners.get(name), metric, answer=answers.get(name)
        )
        for name, (lstm, gru, dtw, majority) in scores.items()
    }
    return suite_statistics("s", evaluations, ropes)


def test_wilcoxon_friedman_and_ranks_match_scipy_and_aeon():
    from aeon.benchmarking.stats import check_friedman
    from scipy.stats import friedmanchisquare, rankdata, wilcoxon
    from statsmodels.stats.multitest import multipletests

    result = suite_of()
    table = np.array(list(SCORES.values()))
    assert result["wilcoxon"]["p_value"] == pytest.approx(wilcoxon(table[:, 0], table[:, 1]).pvalue)
    friedman = friedmanchisquare(*table.T)
    assert result["friedman"]["statistic"] == pytest.approx(friedman.statistic)
    assert result["friedman"]["p_value"] == pytest.approx(friedman.pvalue)
    ranks = rankdata(-table, axis=1)
    assert result["friedman"]["p_value"] == pytest.approx(check_friedman(ranks))  # aeon's, with its tie correction
    models = ["lstm", "gru", "nn_dtw", "majority"]
    assert result["friedman"]["average_ranks"] == pytest.approx(dict(zip(models, ranks.mean(axis=0))))
    assert result["friedman"]["models"][0] == "lstm" and result["friedman"]["models"][-1] == "majority"
    pairs = result["friedman"]["posthoc"]
    assert len(pairs) == 6
    raw = [wilcoxon(table[:, models.index(p["a"])], table[:, models.index(p["b"])]).pvalue for p in pairs]
    assert [p["p_value"] for p in pairs] == pytest.approx(raw)
    # Holm within two families: the compared models (lstm, gru, nn_dtw: 3 pairs), and the pairs
    # with the trivial majority baseline (3 pairs), so majority does not inflate the cells' family.
    for family, size in (("compared", 3), ("trivial", 3)):
        members = [p for p in pairs if p["family"] == family]
        assert len(members) == size
        expected = multipletests([p["p_value"] for p in members], method="holm")[1]
        assert [p["p_holm"] for p in members] == pytest.approx(list(expected))
    assert all(("majority" in (p["a"], p["b"])) == (p["family"] == "trivial") for p in pairs)
    assert result["trivial_baselines"] == ["majority"]


def test_the_four_answers_are_counted_from_each_datasets_verdict():
    result = suite_of()
    # b: GRU's mean is higher but its verdict is undecided -> undecided, not a GRU win.
    assert result["counts"] == {"lstm_better": 3, "equivalent": 1, "undecided": 1, "gru_better": 1, "void": 0}
    row = next(r for r in result["datasets"] if r["dataset"] == "b")
    assert row["answer"] == "undecided" and row["scores"]["gru"] > row["scores"]["lstm"]
    assert [r["answer_words"] for r in result["datasets"]] == [
        "LSTM better",
        "undecided",
        "LSTM better",
        "practically equivalent",
        "GRU better",
        "LSTM better",
    ]
    # each cell against its best baseline (nn_dtw), answer and effect (b - a: baseline - cell)
    f = next(r for r in result["datasets"] if r["dataset"] == "f")
    assert f["best_baseline"] == "nn_dtw"
    assert f["vs_baseline"]["lstm"]["words"] == "lstm better"  # 0.81 vs 0.78
    assert f["vs_baseline"]["gru"]["words"] == "nn_dtw better"  # 0.70 vs 0.78
    assert f["vs_baseline"]["gru"]["effect"]["difference"] == pytest.approx(0.08)
    assert f["effect"]["a"] == "lstm" and f["effect"]["difference"] == pytest.approx(-0.11)


def test_lower_is_better_metrics_are_oriented_before_ranking():
    low = suite_of({k: tuple(1 - v for v in vs) for k, vs in SCORES.items()}, metric="mse_log")
    high = suite_of()
    assert low["friedman"]["average_ranks"] == pytest.approx(high["friedman"]["average_ranks"])
    assert low["wilcoxon"]["p_value"] == pytest.approx(high["wilcoxon"]["p_value"])


def test_all_ties_give_p_one_and_one_clique():
    same = {name: (0.5, 0.5, 0.5, 0.5) for name in "abc"}
    result = suite_of(same, {}, answers={n: "equivalent" for n in "abc"})
    assert result["counts"] == {"lstm_better": 0, "equivalent": 3, "undecided": 0, "gru_better": 0, "void": 0}
    assert result["bayesian"]["p_equivalent"] > 0.99
    assert result["wilcoxon"]["p_value"] == 1.0 and result["wilcoxon"]["note"]
    assert result["friedman"]["p_value"] == 1.0
    assert result["friedman"]["cliques"] == [result["friedman"]["models"]]
    assert set(result["friedman"]["average_ranks"].values()) == {2.5}


@pytest.mark.parametrize(
    "significant",
    [
        set(),
        {("a", "d")},
        {("a", "c"), ("a", "d"), ("b", "d")},
        {("a", "b"), ("b", "c"), ("c", "d"), ("a", "c"), ("a", "d"), ("b", "d")},
        {("a", "b")},
        {("c", "d"), ("b", "d"), ("a", "d")},
    ],
)
def test_cliques_are_aeons(significant):
    """Our bars are aeon's cliques (its private _build_cliques) for the same significant pairs."""
    from aeon.visualisation.results._critical_difference import _build_cliques

    order = ["a", "b", "c", "d"]
    same = np.array([[0 if (order[i], order[j]) in significant else 1 for j in range(4)] for i in range(4)])
    expected = [[order[k] for k in np.flatnonzero(row)] for row in _build_cliques(np.triu(same))]
    assert cliques(order, significant) == expected


def test_a_suite_over_different_metrics_or_without_a_gru_is_refused():
    evaluations = {name: evaluation(0.5, 0.6, {"b": 0.1}) for name in "xy"}
    evaluations["z"] = evaluation(0.5, 0.6, {"b": 0.1}, metric="qlike")
    with pytest.raises(SeqbenchError, match="different headline metrics.*z: qlike"):
        suite_statistics("s", evaluations)
    lonely = {name: {**evaluation(0.5, 0.6, {"b": 0.1}), "cells": ["lstm"]} for name in "xyz"}
    with pytest.raises(SeqbenchError, match="x: its evaluation has no gru"):
        suite_statistics("s", lonely)


def write_params(project, suites, extra=None):
    data = {"datasets": {"a": VIDEO, "b": VIDEO, "c": VIDEO}, "suites": suites, **(extra or {})}
    (project.root / "params.yaml").write_text(yaml.safe_dump(data))


def test_a_suite_naming_an_undeclared_dataset_is_a_clear_error(project):
    write_params(project, {"ucr": {"datasets": ["a", "b", "nope"]}})
    assert_clean_failure(project.run("datasets"), "suites.ucr.datasets", "'nope' is not a declared dataset")


def test_a_suite_of_two_datasets_says_friedman_needs_three(project):
    write_params(project, {"ucr": {"datasets": ["a", "b"]}})
    assert_clean_failure(project.run("datasets"), "suites.ucr.datasets", "at least 3", "Friedman")


def test_a_suites_train_sits_between_the_global_and_the_datasets_own(project):
    from seqbench.config import load_params

    write_params(
        project,
        {"s": {"datasets": ["a", "b", "c"], "train": {"max_epochs": 7, "search": {"trials": 2}}}},
        {"train": {"max_epochs": 30}},
    )
    data = yaml.safe_load((project.root / "params.yaml").read_text())
    data["datasets"]["c"] = {**VIDEO, "train": {"max_epochs": 3}}
    (project.root / "params.yaml").write_text(yaml.safe_dump(data))
    params = load_params(project.root / "params.yaml")
    assert [params.budget(n).max_epochs for n in "abc"] == [7, 7, 3]
    assert params.search("a").trials == 2


def test_a_missing_evaluation_is_named(project):
    write_params(project, {"s": {"datasets": ["a", "b", "c"]}})
    (project.root / "reports" / "eval").mkdir(parents=True)
    (project.root / "reports" / "eval" / "a.json").write_text(json.dumps(evaluation(0.5, 0.6, {"m": 0.1})))
    assert_clean_failure(project.run("suite", "s"), "b, c have no evaluation", "evaluate@b evaluate@c")


def test_the_bundled_ucr_workspace_is_current_and_offline():
    """suites/ucr/dvc.yaml is what `seqbench suite-pipeline` writes from today's dvc.yaml, its
    suite stage lists its code, and every dataset is a set aeon bundles."""
    from seqbench.config import load_params
    from seqbench.orchestration.stage_deps import relative_to_root, stage_closure
    from seqbench.orchestration.workspace import suite_pipeline
    from seqbench.sources import aeon_bundled

    committed = yaml.safe_load((REPO / "suites/ucr/dvc.yaml").read_text())
    expected = suite_pipeline(yaml.safe_load((REPO / "dvc.yaml").read_text()), "../..")
    assert committed == expected, "run `seqbench suite-pipeline suites/ucr/params.yaml` (make suite does)"
    deps = committed["stages"]["suite"]["do"]["deps"]
    assert {f"../../{p}" for p in relative_to_root(stage_closure("suite"))} <= set(deps)
    assert all((REPO / "suites/ucr" / dep).exists() for dep in deps if dep.startswith("../"))
    params = load_params(REPO / "suites/ucr/params.yaml")
    assert set(params.suites["ucr"].datasets) == set(params.datasets)
    bundled = aeon_bundled()
    assert all(d.source.removeprefix("aeon:") in bundled for d in params.datasets.values())


# ---- a tiny suite of each kind through DVC, as `make suite` runs it --------------------------------

TINY_TRAIN = {
    "seeds": 5,  # a suite's minimum (config.check_suite_protocol)
    "max_epochs": 2,
    "patience": 2,
    "hidden_size": 4,
    "size_match": "hidden",
    "batch_size": 8,
    "runner": "sequential",
    "retries": 0,
    "search": {"trials": 0},
}
TINY_NAMES = ("one", "two", "three")
# Per kind: a dataset's params, its source table (by position), and the models the suite ranks.
TINY_KINDS = {
    "video": (
        {
            "kind": "video",
            "min_frames": 2,
            "max_quarantine_fraction": 1.0,
            "splits": {"validation": 0.25, "test": 0.25},
        },
        lambda i: video_frame(clips=24, frames=8 + 2 * i, dims=i + 1),
        {"lstm", "gru", "nn_dtw", "majority"},
    ),
    "volatility": (  # as suites/volatility: next-week log realised variance, each series its own split
        {"kind": "stock", "lookback": 10, "target": "volatility", "horizon": 5, "variance": "squared_returns"},
        lambda i: random_walk_prices(days=260, seed=i),
        {"lstm", "gru", "har_rv", "har_log", "ewma", "garch"},
    ),
}


def tiny_suite(kind: str, workspace) -> dict:
    """A suite of three tiny datasets of `kind`, their sources written into `workspace`."""
    dataset, table, _ = TINY_KINDS[kind]
    for index, name in enumerate(TINY_NAMES):
        table(index).to_csv(workspace / f"{name}.csv", index=False)
    return {
        "verdict": {"rope": {}},  # evaluate's DVC params name the section
        "train": TINY_TRAIN,
        "suites": {"tiny": {"datasets": list(TINY_NAMES), "train": {"learning_rate": 0.01}}},
        "datasets": {name: {**dataset, "source": f"{name}.csv"} for name in TINY_NAMES},
    }


@pytest.mark.parametrize("kind", sorted(TINY_KINDS))
def test_make_suites_path_runs_the_datasets_and_the_suite_stage_into_the_report(
    kind, tmp_path, browser, prefect_server
):
    root = tmp_path / "project"
    env = dvc_project(root, {"datasets": {"other": {"kind": "video", "source": "aeon:GunPoint"}}}, {})
    env.update(prefect_server)  # the session's server, not a temporary one for this run
    workspace = root / "suites" / "tiny"
    workspace.mkdir(parents=True)
    (workspace / "params.yaml").write_text(yaml.safe_dump(tiny_suite(kind, workspace), sort_keys=False))
    # `make suite SUITE=tiny`, without make's install step
    run_command([sys.executable, "-m", "seqbench", "suite-pipeline", "suites/tiny/params.yaml"], root, env)
    output = run_command([sys.executable, "flows/pipeline.py", "--params", "suites/tiny/params.yaml"], root, env)
    for name in TINY_NAMES:
        assert f"Running stage 'evaluate@{name}'" in output
    assert "Running stage 'suite@tiny'" in output and "Running stage 'report'" in output
    assert "other" not in output.split("Running stage")[1:]  # the project's own dataset is not run
    assert not (root / "data" / "raw").exists() or not any((root / "data" / "raw").iterdir())
    result = json.loads((workspace / "reports/suite/tiny.json").read_text())
    assert [row["dataset"] for row in result["datasets"]] == list(TINY_NAMES)
    assert sum(result["counts"].values()) == 3
    assert set(result["friedman"]["average_ranks"]) == TINY_KINDS[kind][2]
    assert 0 <= result["wilcoxon"]["p_value"] <= 1 and 0 <= result["friedman"]["p_value"] <= 1
    bayesian = result["bayesian"]
    assert sum(bayesian[p] for p in ("p_lstm_better", "p_equivalent", "p_gru_better")) == pytest.approx(1)
    assert result["summary"]
    for row in result["datasets"]:  # each cell against the dataset's best baseline, and each other
        assert row["best_baseline"] in TINY_KINDS[kind][2] - {"lstm", "gru"}
        assert set(row["vs_baseline"]) == {"lstm", "gru"} and row["answer_words"]
    report = workspace / "reports/index.html"
    check_in_browser(browser, report, list(TINY_NAMES), f"suite-report-{kind}.png")
    assert browser.find_elements("css selector", "section#suite-tiny.suite")
    for figure in ("cd", "scatter", "cost", "bayes"):
        assert browser.find_elements("css selector", f"#suite-tiny-{figure} .js-plotly-plot .main-svg"), figure
    traces = browser.execute_script("return document.querySelectorAll('#suite-tiny-cd g.trace').length")
    assert traces >= 4  # one per model, plus the bars
    labels = browser.execute_script("return document.querySelector('#suite-tiny-cd').textContent")
    baseline = "nn_dtw" if kind == "video" else "garch"
    assert "lstm (" in labels and f"{baseline} (" in labels
    summary = browser.execute_script("return document.querySelector('section#suite-tiny').textContent")
    assert result["summary"] in " ".join(summary.split())
