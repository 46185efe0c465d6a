"""Property tests of the params parser: whatever params.yaml holds, loading it ends in settings
or in a ConfigError (one line for the user), never in another exception."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from helpers import STOCK
from seqbench.config import NAME, NAME_MAX, parse_params
from seqbench.errors import ConfigError

# What YAML can hold: scalars, lists and mappings of them.
yaml_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=12,
)
TRAIN_KEYS = ["max_epochs", "batch_size", "layers", "dropout", "learning_rate", "search", "seeds", "validation"]
SEARCH_KEYS = ["trials", "space", "parallel", "pruner", "seed"]


def parses_or_refuses(data) -> object:
    try:
        return parse_params(data)
    except ConfigError as exc:
        assert str(exc).startswith("params.yaml"), str(exc)
        return None


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=80))
def test_any_name_is_accepted_only_when_safe(name):
    params = parses_or_refuses({"datasets": {name: STOCK}})
    if params is not None:
        assert re.fullmatch(NAME, name) and len(name) <= NAME_MAX and "." not in name


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.sampled_from(TRAIN_KEYS) | st.text(max_size=8), yaml_values, max_size=4))
def test_any_train_section_parses_or_is_refused(train):
    for data in ({"datasets": {"a": STOCK}, "train": train}, {"datasets": {"a": {**STOCK, "train": train}}}):
        params = parses_or_refuses(data)
        if params is not None:
            params.budget("a"), params.search("a")  # what stages ask later works too


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.sampled_from(SEARCH_KEYS), yaml_values, max_size=3), yaml_values)
def test_any_search_space_parses_or_is_refused(search, space):
    search = {**search, "space": space}
    params = parses_or_refuses({"datasets": {"a": {**STOCK, "train": {"search": search}}}})
    if params is not None:
        params.search("a")


@settings(max_examples=200, deadline=None)
@given(yaml_values)
def test_any_dataset_entry_parses_or_is_refused(entry):
    parses_or_refuses({"datasets": {"a": entry}})


@settings(max_examples=200, deadline=None)
@given(
    st.just("auto") | st.integers(min_value=1, max_value=20) | st.lists(st.integers(0, 99), min_size=1, unique=True),
    st.lists(st.none() | st.integers(min_value=0, max_value=20), min_size=3, max_size=3),
    st.none() | st.integers(min_value=0, max_value=20),
)
def test_a_suite_keeps_the_protocol_exactly_when_seeds_and_trials_allow(seeds, own_trials, suite_trials):
    """Whatever the seeds and trials, the suite check passes exactly when there are 5 seeds or
    more (or auto) and every dataset has the same trials; else its error names the key."""
    from seqbench.config import MIN_SUITE_SEEDS

    datasets = {n: {**STOCK, "train": {"search": {"trials": t}}} for n, t in zip("abc", own_trials)}
    suite = {"datasets": list("abc"), "train": {"search": {"trials": suite_trials}}}
    count = len(seeds) if isinstance(seeds, list) else seeds
    few = count != "auto" and count < MIN_SUITE_SEEDS
    trials = {t if t is not None else (suite_trials or 0) for t in own_trials}
    try:  # loading runs the check (config.Params)
        parse_params({"datasets": datasets, "suites": {"s": suite}, "train": {"seeds": seeds}})
    except ConfigError as exc:
        assert few or len(trials) > 1, str(exc)
        assert ("train.seeds:" if few else "datasets.") in str(exc), str(exc)
    else:
        assert not few and len(trials) == 1
