"""The suite's answers across datasets (stages/suite.py): the four answers counted from each
dataset's verdict, the Bayesian signed-rank test with a ROPE, the post-hoc Holm families without
the trivial baselines, the summary sentence, and the errors for a suite that cannot be tested."""

from __future__ import annotations

import json

import pytest
import yaml

from helpers import assert_clean_failure
from seqbench.errors import SeqbenchError
from seqbench.stages.suite import (
    TRIVIAL_BASELINES,
    bayesian_signed_rank,
    conclusion,
    posthoc,
    suite_statistics,
)

VERDICTS = {  # the dataset's LSTM-vs-GRU answer -> (answer, winner) as stats.verdict gives it
    "lstm": ("a_better", "lstm"),
    "gru": ("b_better", "gru"),
    "equivalent": ("equivalent", None),
    "undecided": ("undecided", None),
    "void": ("void", None),
}


def evaluation(lstm, gru, told, metric="macro_f1", baselines=None):
    """A reports/eval JSON's parts a suite reads; `told`: a key of VERDICTS."""
    baselines = baselines or {"nn_dtw": 0.5, "majority": 0.2}
    answer, winner = VERDICTS[told]
    best = next(iter(baselines))
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
                "verdict": {"answer": answer, "winner": winner, "text": answer, "p_value": 0.2, "rope": 0.01},
                "effect": {
                    "difference": gru - lstm,
                    "low": gru - lstm - 0.01,
                    "high": gru - lstm + 0.01,
                    "p_holm": 0.2,
                },
                **({"void": "lstm did not learn"} if told == "void" else {}),
            },
            {
                "a": "lstm",
                "b": best,
                "metric": metric,
                "verdict": {"answer": "undecided", "winner": None, "text": "undecided", "p_value": 0.3},
                "effect": {"difference": 0.0, "low": -0.1, "high": 0.1, "p_holm": 0.3},
            },
        ],
        "cost": {c: {"train_seconds": {"mean": 1.0}, "trainable_parameters": 10} for c in ("lstm", "gru")},
    }


def row(dataset, lstm, gru, higher=True, best=None, best_score=None):
    """A suite row as bayesian_signed_rank reads it."""
    scores = {"lstm": lstm, "gru": gru, **({best: best_score} if best else {})}
    return {"dataset": dataset, "metric": "m", "higher_is_better": higher, "scores": scores, "best_baseline": best}


ABSOLUTE = {"metric": "macro_f1", "width": 0.01, "relative": False}


# ---- the Bayesian signed-rank test ---------------------------------------------------------------


def test_differences_inside_the_rope_are_practically_equivalent():
    rows = [row(str(i), 0.8, 0.8 + d) for i, d in enumerate([0.002, -0.003, 0.001, 0.0, -0.001, 0.004, -0.002, 0.003])]
    bayes = bayesian_signed_rank(rows, ABSOLUTE)
    assert bayes["p_equivalent"] > 0.95
    assert bayes["p_lstm_better"] + bayes["p_equivalent"] + bayes["p_gru_better"] == pytest.approx(1)


@pytest.mark.parametrize("higher", [True, False])
def test_clearly_better_gru_is_found_whichever_way_the_metric_points(higher):
    # GRU better by 0.04-0.08 on every dataset: higher scores for macro-F1, lower for an error
    gains = [0.05, 0.04, 0.08, 0.06, 0.05, 0.07, 0.04, 0.06]
    rows = [row(str(i), 0.5, 0.5 + (g if higher else -g), higher) for i, g in enumerate(gains)]
    bayes = bayesian_signed_rank(rows, ABSOLUTE)
    assert bayes["p_gru_better"] > 0.95 and bayes["p_lstm_better"] < 0.01
    flipped = bayesian_signed_rank(
        [{**r, "scores": {"lstm": r["scores"]["gru"], "gru": r["scores"]["lstm"]}} for r in rows], ABSOLUTE
    )
    assert flipped["p_lstm_better"] == pytest.approx(bayes["p_gru_better"], abs=0.01)


def test_the_probabilities_are_baycomps_and_reproducible():
    import numpy as np
    from baycomp import SignedRankTest

    diffs = [0.02, -0.01, 0.005, 0.03, -0.004, 0.012]
    rows = [row(str(i), 0.6, 0.6 + d) for i, d in enumerate(diffs)]
    bayes = bayesian_signed_rank(rows, ABSOLUTE)
    left, rope, right = SignedRankTest.probs(np.zeros(6), np.array(bayes["differences"]), 0.01, random_state=0)
    assert (bayes["p_lstm_better"], bayes["p_equivalent"], bayes["p_gru_better"]) == pytest.approx((left, rope, right))
    assert bayesian_signed_rank(rows, ABSOLUTE) == bayes  # fixed seed: the same numbers every run
    assert len(bayes["posterior_sample"]) == 1000 and all(
        sum(p) == pytest.approx(1, abs=1e-3) for p in bayes["posterior_sample"]
    )


def test_a_relative_rope_scales_each_difference_by_its_best_baseline():
    # rmse, lower is better, ROPE 1%: GRU lower by 0.01 is 0.5% of a baseline at 2.0 (inside),
    # but 2% of a baseline at 0.5 (outside, GRU better)
    relative = {"metric": "rmse", "width": 0.01, "relative": True}
    big = [row(str(i), 1.0, 0.99, False, "random_walk", 2.0) for i in range(8)]
    small = [row(str(i), 1.0, 0.99, False, "random_walk", 0.5) for i in range(8)]
    assert bayesian_signed_rank(big, relative)["p_equivalent"] > 0.95
    assert bayesian_signed_rank(small, relative)["p_gru_better"] > 0.95
    with pytest.raises(SeqbenchError, match="3: verdict.rope.rmse is relative"):
        bayesian_signed_rank([*big[:3], row("3", 1.0, 0.99, False, "random_walk", 0.0)], relative)


# ---- counts, families, summary -----------------------------------------------------------------

EIGHT = {  # dataset -> lstm, gru, its own verdict: 3 equivalent, 4 undecided, 1 GRU better
    "a": (0.80, 0.802, "equivalent"),
    "b": (0.70, 0.699, "equivalent"),
    "c": (0.60, 0.603, "equivalent"),
    "d": (0.50, 0.52, "undecided"),
    "e": (0.90, 0.89, "undecided"),
    "f": (0.55, 0.565, "undecided"),
    "g": (0.65, 0.64, "undecided"),
    "h": (0.40, 0.46, "gru"),
}


def suite(datasets=EIGHT, ropes=None, metric="macro_f1"):
    return suite_statistics("ucr", {n: evaluation(a, b, t, metric) for n, (a, b, t) in datasets.items()}, ropes)


def test_the_four_answers_are_each_datasets_own_and_a_better_mean_is_not_a_win():
    result = suite()
    assert result["counts"] == {"lstm_better": 0, "equivalent": 3, "undecided": 4, "gru_better": 1, "void": 0}
    d = next(r for r in result["datasets"] if r["dataset"] == "d")
    assert d["answer_words"] == "undecided" and d["scores"]["gru"] > d["scores"]["lstm"]
    assert d["effect"] == {
        "a": "lstm",
        "b": "gru",
        "difference": pytest.approx(0.02),
        "low": pytest.approx(0.01),
        "high": pytest.approx(0.03),
        "p_holm": 0.2,
    }
    assert d["vs_baseline"]["lstm"]["words"] == "undecided" and d["vs_baseline"]["lstm"]["effect"]["b"] == "nn_dtw"
    json.dumps(result)  # the stage writes it as JSON


def test_a_void_dataset_is_counted_but_left_out_of_the_tests_across_datasets():
    result = suite({**EIGHT, "h": (0.40, 0.46, "void")})
    assert result["counts"]["void"] == 1 and result["counts"]["gru_better"] == 0
    assert result["bayesian"]["n"] == 7 and "h" not in result["bayesian"]["datasets"]
    assert "the 1 void one (a cell did not learn) is left out" in result["summary"]
    every = suite({n: (0.5, 0.6, "void") for n in "abc"})
    assert every["bayesian"] is None and "every comparison is void" in every["summary"]


def test_the_summary_sentence_says_what_may_be_concluded_and_what_not():
    result = suite()
    bayes = result["bayesian"]
    summary = result["summary"]
    assert summary.startswith(
        "Across 8 datasets, each dataset's own verdict: practically equivalent on 3, undecided on 4, GRU better on 1; "
    )
    assert f"P(practically equivalent) = {bayes['p_equivalent']:.2f}" in summary
    assert "ROPE ±0.01 macro_f1" in summary
    assert summary.endswith("; the 4 undecided ones need more seeds or test data.")
    assert conclusion(bayes) in summary
    assert ". " not in summary  # one sentence: its only full stop ends it


@pytest.mark.parametrize(
    "probs, says",
    [
        ((0.96, 0.03, 0.01), "LSTM is better across these datasets"),
        ((0.01, 0.03, 0.96), "GRU is better across these datasets"),
        ((0.02, 0.97, 0.01), "practically equivalent across these datasets"),
        ((0.30, 0.66, 0.04), "GRU is not better across these datasets, but neither is LSTM shown better"),
        ((0.04, 0.30, 0.66), "LSTM is not better across these datasets"),
        ((0.40, 0.20, 0.40), "no cell is shown better across these datasets, nor the two equivalent"),
    ],
)
def test_the_conclusion_follows_the_probabilities(probs, says):
    bayes = dict(zip(("p_lstm_better", "p_equivalent", "p_gru_better"), probs))
    assert says in conclusion(bayes)


def test_the_holm_family_of_the_posthoc_tests_leaves_out_trivial_baselines():
    import numpy as np
    from scipy.stats import wilcoxon

    rng = np.random.default_rng(0)
    matrix = rng.random((8, 4))
    models = ["lstm", "gru", "nn_dtw", "majority"]
    pairs = posthoc(matrix, models)
    compared = [p for p in pairs if p["family"] == "compared"]
    assert {(p["a"], p["b"]) for p in compared} == {("lstm", "gru"), ("lstm", "nn_dtw"), ("gru", "nn_dtw")}
    smallest = min(compared, key=lambda p: p["p_value"])
    # Holm's multiplier for the smallest p is the family's size: 3, not the 6 pairs of 4 models
    assert smallest["p_holm"] == pytest.approx(min(1.0, 3 * smallest["p_value"]))
    lstm_gru = next(p for p in pairs if (p["a"], p["b"]) == ("lstm", "gru"))
    assert lstm_gru["p_value"] == pytest.approx(wilcoxon(matrix[:, 0], matrix[:, 1]).pvalue)
    # the stock kind's constant forecasts are trivial, its ridge regression on the inputs is not
    assert {"majority", "random_walk", "historical_mean", "always_up"} == TRIVIAL_BASELINES
    stock = posthoc(rng.random((8, 5)), ["lstm", "gru", "random_walk", "historical_mean", "ridge_ar"])
    assert sum(p["family"] == "compared" for p in stock) == 3


def test_friedman_still_ranks_the_trivial_baselines():
    result = suite()
    assert set(result["friedman"]["average_ranks"]) == {"lstm", "gru", "nn_dtw", "majority"}
    assert result["friedman"]["models"][-1] == "majority"
    assert result["trivial_baselines"] == ["majority"]


# ---- bad input -------------------------------------------------------------------------------------


def test_mixed_metrics_name_the_suite_the_datasets_and_their_metrics():
    evaluations = {n: evaluation(0.5, 0.6, "undecided") for n in "xy"}
    evaluations["z"] = evaluation(0.5, 0.6, "undecided", metric="accuracy")
    with pytest.raises(
        SeqbenchError, match=r"suite 'ucr'.*different headline metrics \(x: macro_f1, y: macro_f1, z: accuracy\)"
    ):
        suite_statistics("ucr", evaluations)


def test_a_metric_without_any_rope_names_the_key_to_set():
    datasets = {n: (0.5, 0.6, "undecided") for n in "xyz"}
    with pytest.raises(SeqbenchError, match=r"suite 'ucr'.*`verdict\.rope\.mz_r2`"):
        suite(datasets, metric="mz_r2")
    assert suite(datasets, {"mz_r2": 0.05}, metric="mz_r2")["rope"] == {
        "metric": "mz_r2",
        "width": 0.05,
        "relative": False,
    }


def test_the_global_rope_overrides_the_default():
    wide = suite(ropes={"macro_f1": 0.1})
    assert wide["rope"]["width"] == 0.1 and wide["bayesian"]["p_equivalent"] > 0.95
    assert "ROPE ±0.1 macro_f1" in wide["summary"]


VIDEO = {"kind": "video", "source": "aeon:GunPoint"}


def project_with(project, evaluations, verdict=None):
    params = {"datasets": {n: VIDEO for n in evaluations}, "suites": {"s": {"datasets": list(evaluations)}}}
    (project.root / "params.yaml").write_text(yaml.safe_dump({**params, **({"verdict": verdict} if verdict else {})}))
    folder = project.root / "reports" / "eval"
    folder.mkdir(parents=True)
    for name, result in evaluations.items():
        (folder / f"{name}.json").write_text(json.dumps(result))


def test_the_cli_names_the_missing_rope_key_without_a_traceback(project):
    project_with(project, {n: evaluation(0.5, 0.6, "undecided", metric="mz_r2") for n in "abc"})
    assert_clean_failure(project.run("suite", "s"), "verdict.rope.mz_r2", "suite 's'")


def test_the_cli_names_the_datasets_of_mixed_metrics_without_a_traceback(project):
    evaluations = {n: evaluation(0.5, 0.6, "undecided") for n in "ab"}
    evaluations["c"] = evaluation(0.5, 0.6, "undecided", metric="accuracy")
    project_with(project, evaluations)
    assert_clean_failure(project.run("suite", "s"), "suite 's'", "c: accuracy", "a: macro_f1")


def test_the_suite_json_holds_the_answers_the_test_and_the_sentence(project):
    project_with(
        project, {n: evaluation(a, b, t) for n, (a, b, t) in list(EIGHT.items())[:4]}, {"rope": {"macro_f1": 0.02}}
    )
    from seqbench.stages.suite import run_suite

    run_suite("s", project.root / "params.yaml")
    written = json.loads((project.root / "reports" / "suite" / "s.json").read_text())
    assert written["rope"]["width"] == 0.02 and written["summary"].startswith("Across 4 datasets")
    assert written["counts"]["equivalent"] == 3 and 0 <= written["bayesian"]["p_equivalent"] <= 1


def test_a_relative_default_rope_is_named_as_such_in_the_sentence():
    # rmse's default ROPE is 1% (ROPE_DEFAULTS): GRU lower by 0.1 against a baseline at 1.1 is 9%
    baselines = {"random_walk": 1.1, "historical_mean": 1.2}
    evaluations = {n: evaluation(1.0, 0.9, "gru", metric="rmse", baselines=baselines) for n in "abcd"}
    result = suite_statistics("s", evaluations)
    assert result["rope"] == {"metric": "rmse", "width": 0.01, "relative": True}
    assert result["bayesian"]["differences"] == pytest.approx([0.1 / 1.1] * 4)
    assert "(ROPE ±1% of each dataset's best baseline rmse)" in result["summary"]
    assert result["summary"].endswith("GRU is better across these datasets.")
    assert result["trivial_baselines"] == ["random_walk", "historical_mean"]
