"""The equal-budget search's trials: paired across cells, and how decisive the search was."""

import pytest

# The bundled order: the LSTM-only forget_bias comes before batch_size (a dataset's own key).
SPACE = {
    "learning_rate": {"low": 3e-4, "high": 1e-2, "log": True},
    "lr_schedule": ["constant", "cosine"],
    "weight_decay": {"low": 1e-6, "high": 1e-2, "log": True},
    "layers": [1, 2],
    "dropout": {"low": 0.0, "high": 0.4},
    "forget_bias": [None, 1.0],
    "batch_size": [4, 8, 16],
}


def searched_params(cell: str, setting, loss) -> list[dict]:
    """The params of each trial of a cell, asked in the search flow's rounds (flows/search.py)
    and told `loss(cell, k)`: the cells see different losses, as in a real search."""
    import optuna

    from seqbench.training.trials import ask, finished

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="minimize")
    while (done := len(finished(study))) < setting.trials:
        round_ = [ask(study, setting, cell, done + i) for i in range(min(setting.parallel, setting.trials - done))]
        for trial in round_:
            study.tell(trial, loss(cell, trial.number))
    return [t.params for t in study.trials]


@pytest.mark.parametrize("parallel, startup, random_trials", [(2, 4, 4), (3, 4, 6), (1, 2, 2)])
def test_trial_k_of_both_cells_shares_every_shared_dimension_while_sampled_at_random(parallel, startup, random_trials):
    from seqbench.settings import Search

    setting = Search(trials=10, seed=7, parallel=parallel, startup_trials=startup, space=SPACE)

    def loss(cell, k):  # unrelated losses per cell: TPE then models each cell's own results
        return ((k * 37 + (11 if cell == "lstm" else 5)) % 13) / 13

    lstm, gru = searched_params("lstm", setting, loss), searched_params("gru", setting, loss)
    assert all("forget_bias" in p for p in lstm) and not any("forget_bias" in p for p in gru)
    # A trial is drawn at random while fewer than `startup_trials` had finished when its round
    # was asked: in rounds of `parallel`, the first ceil(startup / parallel) * parallel trials.
    for k in range(random_trials):
        shared = {key: value for key, value in lstm[k].items() if key != "forget_bias"}
        assert shared == gru[k], f"trial {k}"
    # The pairs differ from one another: the pairing is not every trial getting one value.
    assert len({p["learning_rate"] for p in gru[:random_trials]}) == random_trials


def test_shared_dimensions_are_drawn_first_in_the_space_order():
    from seqbench.settings import Search
    from seqbench.training.trials import distributions

    space = Search(space=SPACE).space
    assert list(distributions(space, "lstm")) == [*(k for k in SPACE if k != "forget_bias"), "forget_bias"]
    assert list(distributions(space, "gru")) == [k for k in SPACE if k != "forget_bias"]


def test_the_bundled_spaces_pair_the_cells():
    """Every bundled dataset's space: its startup trials give both cells the same shared values."""
    from pathlib import Path

    from seqbench.config import load_params

    params = load_params(Path(__file__).resolve().parents[2] / "params.yaml")
    for name in params.datasets:
        setting = params.search(name)
        if not setting.trials:
            continue
        short = setting.model_copy(update={"trials": setting.startup_trials})
        lstm = searched_params("lstm", short, lambda cell, k: float(k))
        gru = searched_params("gru", short, lambda cell, k: float(k))
        assert [{k: v for k, v in p.items() if k in g} for p, g in zip(lstm, gru)] == gru, name


def test_top_trials_give_the_best_three_values_and_their_spread():
    from seqbench.stages.search import top_trials

    complete = [{"number": n, "value": v} for n, v in enumerate([0.5, 0.2, 0.9, 0.3, 0.25])]
    assert top_trials(complete) == {"numbers": [1, 4, 3], "values": [0.2, 0.25, 0.3], "spread": pytest.approx(0.1)}
    assert top_trials(complete[:1]) == {"numbers": [0], "values": [0.5], "spread": 0.0}
    assert top_trials([]) == {"numbers": [], "values": [], "spread": None}
