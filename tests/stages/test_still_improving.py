"""No cut-off training passes silently: a run still improving when its epochs ran out (its best
epoch within its last `patience` epochs of max_epochs; with k-fold, the folds' mean curve's) is
marked, its cell's comparisons are at most undecided with the reason, and the report says so."""

from __future__ import annotations

import json

import numpy as np
import pytest

from seqbench.training.runs import cut_off, still_improving

# ---- the run-level rule ---------------------------------------------------------------------------


def holdout(best_epoch: int, epochs_run: int) -> dict:
    return {"validation": "holdout", "best_epoch": best_epoch, "epochs_run": epochs_run}


def budget(max_epochs: int = 20, patience: int = 4) -> dict:
    """A run's config.json, as much of it as the rule reads."""
    return {"budget": {"max_epochs": max_epochs, "patience": patience, "validation": "holdout"}}


def test_a_best_epoch_within_the_last_patience_epochs_is_still_improving():
    # max_epochs 20, patience 4: early stopping could judge a best epoch up to 16 (16 + 4 = 20).
    assert still_improving(holdout(17, 20), budget())  # 20 - 4 + 1: cut off
    assert still_improving(holdout(20, 20), budget())  # best at the very last epoch
    assert not still_improving(holdout(16, 20), budget())  # 20 - 4: early stopping had its say
    assert cut_off(holdout(17, 20), budget()) == {
        "validation": "holdout",
        "best_epoch": 17,
        "max_epochs": 20,
        "patience": 4,
    }


def test_an_early_stopped_run_is_not_still_improving():
    assert not still_improving(holdout(8, 12), budget())  # stopped 4 epochs after its best
    assert not still_improving(holdout(0, 5), budget())  # never beat its untrained model
    # Even a best epoch late in the budget: a run that stopped before max_epochs was not cut off.
    assert not still_improving(holdout(17, 19), budget())


def test_a_budget_shorter_than_patience_marks_every_full_run():
    # Early stopping can never act within 3 epochs with patience 5: a run that improved is cut off.
    assert still_improving(holdout(1, 3), budget(max_epochs=3, patience=5))


def kfold_config(best: int, fold_max_epochs: int | None = 120, patience: int = 25, reached: int = 120) -> dict:
    """A k-fold run's config.json: the search set max_epochs to the refit epochs; the folds' own
    budget and mean curve (lowest at `best`, over the `reached` epochs every fold ran) are in
    cross_validation."""
    curve = [1.0 - 0.001 * min(e, best) + 0.002 * (e > best) for e in range(reached + 1)]
    cross_validation = {
        "mean_val_losses": curve,
        "folds": [{"best_value": 0.5, "epochs": reached, "steps_per_epoch": 7}] * 5,
        "refit_epochs": max(1, best),
        "refit_steps": 7 * best,
        "value": min(curve),
    }
    if fold_max_epochs is not None:
        cross_validation["fold_max_epochs"] = fold_max_epochs
    return {
        "budget": {"max_epochs": max(1, best), "patience": patience, "validation": "kfold"},
        "cross_validation": cross_validation,
    }


def kfold_run(epochs: int) -> dict:
    # A refit keeps its last epoch: its own best_epoch is always its last and says nothing.
    return {"validation": "kfold", "best_epoch": epochs, "epochs_run": epochs}


def test_kfold_reads_the_cross_validated_curve_against_the_folds_budget():
    # fold_max_epochs 120, patience 25: the folds' early stopping could judge epochs up to 95.
    assert still_improving(kfold_run(60), kfold_config(96))
    assert cut_off(kfold_run(60), kfold_config(96)) == {
        "validation": "kfold",
        "best_epoch": 96,
        "max_epochs": 120,
        "patience": 25,
    }
    assert not still_improving(kfold_run(60), kfold_config(95))
    # The refit's own numbers would mark every k-fold run (its best epoch is its last, and its
    # max_epochs is the refit's): only the cross-validation counts.
    assert not still_improving(kfold_run(40), kfold_config(40))
    # A search result from before fold_max_epochs was recorded cannot tell: not marked.
    assert not still_improving(kfold_run(60), kfold_config(118, fold_max_epochs=None))


def test_kfold_is_not_cut_off_where_a_fold_stopped_early():
    # One fold stopped early at epoch 110: the mean curve ends there whatever the budget, so
    # more epochs would not move its lowest point (109, within the last 25 of 120).
    assert not still_improving(kfold_run(60), kfold_config(109, reached=110))
    # An older result without the mean curve: the refit epochs, and the folds' epochs run.
    older = kfold_config(100)
    del older["cross_validation"]["mean_val_losses"]
    assert still_improving(kfold_run(60), older)
    older["cross_validation"]["folds"][0] = {**older["cross_validation"]["folds"][0], "epochs": 110}
    assert not still_improving(kfold_run(60), older)


# ---- evaluation: which cells, and the verdict's cap ---------------------------------------------------


def write_runs(root, best_epochs: dict, max_epochs: int = 20, patience: int = 4) -> dict:
    """(cell, seed) -> a finished run folder (metrics.json, config.json); `best_epochs[cell]`:
    each seed's (best epoch, epochs run)."""
    runs = {}
    for cell, seeds in best_epochs.items():
        for seed, (best, ran) in enumerate(seeds):
            folder = root / cell / f"seed{seed}"
            folder.mkdir(parents=True)
            metrics = {**holdout(best, ran), "best_val_loss": 0.5, "untrained_val_loss": 0.7}
            (folder / "metrics.json").write_text(json.dumps(metrics))
            (folder / "config.json").write_text(json.dumps(budget(max_epochs, patience)))
            runs[(cell, seed)] = folder
    return runs


def test_evaluation_finds_the_cells_with_runs_still_improving(tmp_path):
    from seqbench.stages.evaluate import cells_still_improving

    runs = write_runs(tmp_path, {"lstm": [(8, 12), (16, 20), (10, 14)], "gru": [(18, 20), (9, 13), (20, 20)]})
    found = cells_still_improving(runs, ["lstm", "gru"], [0, 1, 2])
    assert list(found) == ["gru"]
    assert found["gru"]["runs"] == 2 and found["gru"]["of"] == 3
    reason = found["gru"]["reason"]
    assert "2 of 3 gru runs were still improving at max_epochs" in reason
    assert "within the last 4 of 20 epochs" in reason and "raise train.max_epochs" in reason


def comparison(a: str, b: str, verdict: dict) -> dict:
    effect = {"difference": 0.1, "low": 0.05, "high": 0.15, "p_value": 0.001, "p_holm": 0.002}
    return {"a": a, "b": b, "metric": "macro_f1", "effect": effect, "verdict": verdict}


def test_a_comparison_with_a_cell_still_improving_is_at_most_undecided():
    from seqbench.stages.evaluate import cap_still_improving

    improving = {"gru": {"runs": 3, "of": 5, "reason": "3 of 5 gru runs were still improving at max_epochs"}}
    common = {"p_value": 0.002, "p_adjustment": "holm", "rope": 0.01}
    found = [
        comparison("lstm", "gru", {"answer": "b_better", "winner": "gru", "text": "gru is better", **common}),
        comparison("gru", "majority", {"answer": "equivalent", "winner": None, "text": "practically equivalent"}),
        comparison("lstm", "majority", {"answer": "a_better", "winner": "lstm", "text": "lstm is better", **common}),
        comparison(
            "gru",
            "tfidf",
            {"answer": "undecided", "winner": None, "text": "undecided", "reason": "wide", "seeds_to_decide": 9},
        ),
    ]
    cap_still_improving(found, improving)
    head = found[0]
    assert head["verdict"]["answer"] == "undecided" and head["verdict"]["winner"] is None
    assert head["verdict"]["uncapped"] == "b_better"
    assert head["verdict"]["reason"] == improving["gru"]["reason"]
    assert head["verdict"]["text"] == "undecided: gru still improving"
    assert head["still_improving"] == improving["gru"]["reason"]
    # The numbers stay as they were: effect, p and ROPE.
    assert head["effect"]["p_holm"] == 0.002 and head["verdict"]["p_value"] == 0.002
    assert found[1]["verdict"]["answer"] == "undecided" and found[1]["verdict"]["uncapped"] == "equivalent"
    # The LSTM's runs all stopped early: its comparison with the baseline stands.
    assert found[2]["verdict"]["answer"] == "a_better" and "still_improving" not in found[2]
    # Already undecided: both reasons, its seeds estimate kept.
    assert found[3]["verdict"]["reason"].startswith(improving["gru"]["reason"])
    assert "wide" in found[3]["verdict"]["reason"] and found[3]["verdict"]["seeds_to_decide"] == 9


def test_a_void_comparison_stays_void():
    from seqbench.stages.evaluate import cap_still_improving, mark_void

    found = [comparison("lstm", "gru", {"answer": "b_better", "winner": "gru", "text": "gru is better"})]
    mark_void(found, {"lstm": "did not learn"})
    cap_still_improving(found, {"gru": {"runs": 1, "of": 2, "reason": "r"}})
    assert found[0]["verdict"]["answer"] == "void" and "still_improving" not in found[0]


def improving_gru() -> dict:
    return {
        "gru": {
            "runs": 2,
            "of": 2,
            "reason": "2 of 2 gru runs were still improving at max_epochs (best epoch within the last "
            "5 of 30 epochs: cut off, not early-stopped): raise train.max_epochs",
        }
    }


def test_the_cap_keeps_the_holm_family_and_the_numbers():
    from report_data import text_evaluation

    plain, _ = text_evaluation(np.random.default_rng(0))
    capped, _ = text_evaluation(np.random.default_rng(0), improving_gru())
    assert plain["comparisons"][0]["verdict"]["answer"] == "a_better"  # LSTM right, GRU wrong on every review
    head = capped["comparisons"][0]
    assert head["verdict"]["answer"] == "undecided" and head["verdict"]["uncapped"] == "a_better"
    assert "raise train.max_epochs" in head["verdict"]["reason"]
    assert capped["still_improving"] == improving_gru()
    for before, after in zip(plain["comparisons"], capped["comparisons"]):
        assert after["effect"] == before["effect"]  # the same test, p and Holm p
    lstm_vs_majority = capped["comparisons"][1]
    assert lstm_vs_majority["verdict"] == plain["comparisons"][1]["verdict"]  # no GRU in it


# ---- the training summary -------------------------------------------------------------------------


def test_the_training_summary_counts_the_runs_still_improving(tmp_path):
    from seqbench.stages.train import summarize, with_still_improving

    runs = write_runs(tmp_path, {"gru": [(18, 20), (9, 13)]})
    results = [
        with_still_improving(
            {
                **json.loads((runs[("gru", s)] / "metrics.json").read_text()),
                "cell": "gru",
                "seed": s,
                "train_seconds": 1.0,
            },
            runs[("gru", s)],
        )
        for s in (0, 1)
    ]
    results = [{**r, "trainable_parameters": 10} for r in results]
    summary = summarize("toy", results, {})
    assert summary["cells"]["gru"]["still_improving_runs"] == 1
    assert summary["cells"]["gru"]["per_seed"]["0"]["still_improving"] is True
    assert summary["cells"]["gru"]["per_seed"]["1"]["still_improving"] is False


# ---- the report and the suite ---------------------------------------------------------------------


@pytest.fixture
def capped_project(tmp_path):
    import yaml

    from report_data import stock_evaluation, text_evaluation, write_dataset

    rng = np.random.default_rng(0)
    write_dataset(tmp_path, "prices", *stock_evaluation(rng))
    reviews, predictions = text_evaluation(rng, improving_gru())
    write_dataset(tmp_path, "reviews", reviews, predictions, columns=("text",), searched=False)
    params = {
        "datasets": {
            "prices": {"kind": "stock", "source": "prices.csv"},
            "reviews": {"kind": "text", "source": "reviews.csv", "labels": ["<b>great</b>", "other"]},
        }
    }
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    return tmp_path, reviews


def test_the_report_warns_where_a_cell_was_still_improving(capped_project):
    from seqbench.stages.report import render_report

    root, _ = capped_project
    html = render_report(root / "params.yaml").read_text(encoding="utf-8")
    reviews = html[html.index('<section id="reviews"') :]
    reviews = reviews[: reviews.index("</section>")]
    warning = reviews[reviews.index('id="reviews-still-improving-gru"') :]
    warning = warning[: warning.index("</p>")]
    assert "gru: still improving when training stopped" in warning and "2 of 2 gru runs" in warning
    assert "raise train.max_epochs" in warning and "at most undecided" in warning
    # Near the verdict: the comparisons table follows, its verdict capped and the reason beside it.
    comparisons = reviews[reviews.index("<h3>Comparisons</h3>") :]
    assert comparisons.index("reviews-still-improving-gru") < comparisons.index('<table class="tests">')
    assert "undecided: gru still improving" in comparisons
    # The answer sentence says so; the prices section, whose runs stopped early, has no warning.
    summary = html[html.index('<div id="answers">') : html.index('id="summary-table"')]
    answer = summary[summary.index('href="#reviews"') :]
    assert "lstm vs gru: undecided (" in answer
    assert "as 2 of 2 gru runs were still improving at max_epochs: raise max_epochs" in answer
    assert "still-improving" not in html[html.index('<section id="prices"') : html.index('<section id="reviews"')]


def test_the_suite_row_names_the_cells_still_improving(capped_project):
    from seqbench.stages.suite import dataset_row

    _, reviews = capped_project  # write_dataset added its cost
    row = dataset_row("reviews", reviews)
    assert row["still_improving"] == ["gru"]
    assert row["winner"] is None and row["verdict"] == "undecided: gru still improving"
