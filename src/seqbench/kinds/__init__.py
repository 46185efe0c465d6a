"""Everything that differs by kind of data lives in one module per kind, listed in KINDS.

A kind's module provides (tests/unit/test_kinds.py checks each registered kind for all of them):

- `SETTINGS`: its pydantic settings class (a `settings.DatasetBase` whose `kind` literal is
  its name in KINDS); config.py builds params.yaml's `datasets:` union from these;
- `COLUMNS` (the canonical columns) and `GROUP_KEY` (the unit quarantined together, or None);
- ingest and validate: `canonicalize(tables, cfg)`, `add_check_columns(df, cfg)`,
  `checks(cfg, df)`, `summary(df, cfg)`;
- optionally `CHECK_COLUMNS`: helper column of add_check_columns -> (what its value means, the
  canonical columns it is computed from), which the validation page shows in place of the helper;
- prepare: `TASK` (which model, and so which batching: "forecast" or "classify") and
  `prepare(df, cfg) -> (arrays, meta)`; config: `CROSS_VALIDATES` (whether `validation:
  kfold` may pool its training and validation items);
- evaluate: `baselines(arrays, meta, validated_path, split="test")`, `scorer(arrays, meta,
  split="test")` (a `base.Scorer`: scores, paired tests, the predictions table; the
  classification kinds share kinds/classify.py's) and `describe_test(arrays, validated_path)`
  (a text per test example, or None). `split` is one of `base.SCORED_SPLITS`: "test" gives the
  baselines' test outputs, each fit on the training and validation items, and the test split's
  scorer; "val" gives their validation outputs, each fit on the training items alone (never
  seeing validation or test), and a scorer of the validation split's truth with the same
  metrics and primary: where the best baseline is chosen, so that the test split only scores.
  A scorer that `calibrates` adjusts every model alike, RNN runs and baselines (a baseline's
  `calibrate(name, test_output, val_output)` takes its split="val" outputs);
- predict: `predict_inputs(df, meta)` and `format_predictions(rows, outputs, meta)`;
- report: `report_figures(context)`, the figures its section draws (stages/report/sections.py
  has one function per figure name).

The stages are generic and ask the kind; the kinds import from base.py and the shared modules
(classify.py for the classification kinds; returns.py and volatility.py, the stock kind's two
targets, chosen once by `stock.target_of(meta)`), never from the stages. Adding a kind touches its
own module and one registry line in KINDS (and gives tests/unit/test_kinds.py a tiny table for it),
as long as it uses a task the models already have: "forecast" (windows of a series, like stock)
or "classify" (variable-length sequences, like text and video). A new task would also need its
model (models/, with the Dataset it reads from batching.py) and, for new figures, their
functions in stages/report/sections.py.
"""

from seqbench.errors import ConfigError
from seqbench.kinds import stock, text, video

KINDS = {"stock": stock, "text": text, "video": video}


def get_kind(name: str):
    """The module of kind `name`."""
    try:
        return KINDS[name]
    except KeyError:
        raise ConfigError(f"unknown kind '{name}'; the kinds are: {', '.join(KINDS)}") from None
