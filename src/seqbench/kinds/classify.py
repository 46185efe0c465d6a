"""What the classification kinds (text, video) share: the loss's class weights, the majority
baseline, the predictions' format and the scorer of class probabilities.

A kind imports from here what it needs; stock, a forecasting kind, has its own in returns.py and
volatility.py, one module per target.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, field_validator, model_validator

from seqbench.kinds.base import check_split
from seqbench.settings import DatasetBase

# ---- the classes: declared in params.yaml, or inferred from the data ----------------------------

LISTED_LABELS = 20  # labels named in a message; more are counted, not listed


def inferred_labels(found) -> list[str]:
    """The distinct labels in `found` (nulls aside), sorted: numerically when every label is a
    whole number ("2" before "10"), else as text. Sorted, not in order of appearance, so that
    the classes (the model's outputs) do not move when the rows do."""
    import pandas as pd

    distinct = {str(label) for label in found if not pd.isna(label)}
    if distinct and all(label.lstrip("-").isdigit() for label in distinct):
        return sorted(distinct, key=lambda label: (int(label), label))
    return sorted(distinct)


def listed(labels) -> str:
    """Labels for a message: "a, b, c", the first LISTED_LABELS and a count past that."""
    labels = list(labels)
    shown = ", ".join(labels[:LISTED_LABELS]) or "none"
    return shown if len(labels) <= LISTED_LABELS else f"{shown}, … ({len(labels)} in all)"


def label_mismatch(found, declared) -> str:
    """ "found negative, positive; declared neg, pos": the data's labels beside params.yaml's."""
    return f"found {listed(inferred_labels(found))}; declared {listed(declared)}"


def class_names(found, declared: list[str] | None) -> list[str]:
    """The classes in the order of the model's outputs (meta.json's `labels`, which evaluation,
    prediction and the report read): `labels:` of params.yaml when declared, else the labels of
    `found` (the validated rows, all splits), inferred_labels' order."""
    from seqbench.errors import ConfigError

    if declared:
        undeclared = set(inferred_labels(found)) - set(declared)
        if undeclared:
            raise ConfigError(
                f"labels: the data has labels that are not declared: {label_mismatch(found, declared)}; "
                "add them to labels:, or remove labels: to use the labels of the data"
            )
        return list(declared)
    names = inferred_labels(found)
    if len(names) < 2:
        raise ConfigError(
            f"labels: not declared, and the validated data has {len(names)} label(s) ({listed(names)}); "
            "a classifier needs two or more"
        )
    return names


def labels_summary(found, declared: list[str] | None) -> dict:
    """The classes as the validation page shows them: which, and where they come from."""
    if declared:
        return {"labels": list(declared), "labels_from": "declared in params.yaml (labels:)"}
    return {
        "labels": inferred_labels(found),
        "labels_from": "inferred: not declared in params.yaml, so the distinct labels of the validated rows, sorted",
    }


# ---- preparation -------------------------------------------------------------------------------


# The report's figures of a classification, with their options (stages/report/sections.py).
REPORT_FIGURES = {"confusion": {}, "roc": {}}


def report_figures(context) -> dict:
    """The report's figures of a classification dataset (figure name -> options)."""
    return REPORT_FIGURES


def class_weights(train_labels, classes: int, how: str) -> list[float] | None:
    """The classifier's loss weight per class, from the training split only (validation and
    test frequencies must not leak in). "balanced" is scikit-learn's rule, n / (classes x
    count), the one the baselines' class_weight="balanced" applies; "none" gives None."""
    import numpy as np
    from sklearn.utils.class_weight import compute_class_weight

    if how == "none":
        return None
    present = np.unique(train_labels)
    weights = np.ones(classes)
    # A class absent from training has nothing to weigh there; it keeps 1 (its validation
    # examples still count in the validation loss).
    weights[present] = compute_class_weight("balanced", classes=present, y=train_labels)
    return [round(float(w), 6) for w in weights]


def loss_weights(arrays: dict, n_classes: int, cfg) -> dict:
    """meta.json's `class_weight` (the setting) and `class_weights` (per class, from the
    training split), which the classifier's loss and the weighted baselines read."""
    train_labels = arrays["labels"][arrays["idx_train"]]
    return {"class_weight": cfg.class_weight, "class_weights": class_weights(train_labels, n_classes, cfg.class_weight)}


# ---- baselines and predictions -------------------------------------------------------------------


def baseline_items(arrays: dict, split: str = "test"):
    """(items a baseline is fit on, items it predicts) for `split`: the training and validation
    items and the test items for "test"; the training items and the validation items for "val",
    so that a baseline's validation outputs never saw a validation or test label."""
    import numpy as np

    if check_split(split) == "val":
        return np.asarray(arrays["idx_train"]), np.asarray(arrays["idx_val"])
    return np.concatenate([arrays["idx_train"], arrays["idx_val"]]), np.asarray(arrays["idx_test"])


def classification_output(rows, probabilities, labels: list[str]):
    """The predicted label and one probability column per label."""
    columns = {f"p_{label}": probabilities[:, i] for i, label in enumerate(labels)}
    predicted = [labels[i] for i in probabilities.argmax(axis=1)]
    return rows.assign(predicted_label=predicted, **columns)


def majority_probabilities(train_labels, n_rows: int, n_classes: int):
    """The majority-class baseline: the class frequencies of `train_labels` (the items it is fit
    on), the same for every row
    (its predicted class is the most frequent one; its ROC-AUC is 0.5 by construction)."""
    import numpy as np

    frequencies = np.bincount(np.asarray(train_labels), minlength=n_classes) / len(train_labels)
    return np.tile(frequencies, (n_rows, 1))


# ---- scoring (evaluate stage) ------------------------------------------------------------------


class ClassifierScorer:
    """Scores class probabilities of `split`'s items ("test", or "val": the same metrics against
    the validation labels); pairs classifiers with a permutation test of macro-F1 (and McNemar).
    The scorer of every classification kind (kinds.base.Scorer says what one does)."""

    primary = "macro_f1"
    calibrates = False  # probabilities are scored as each model gives them: no model is adjusted
    serial = False  # test examples are independent: resampled one by one
    loss = None  # macro-F1 is no mean of per-example losses

    def primary_items(self, output):
        """[n, 3C]: per example and class c, (predicted c and right, predicted c, actually c).
        Macro-F1 is primary_from_means of their means: per class 2TP / (2TP + FP + FN)."""
        import numpy as np

        classes = np.eye(len(self.names))
        predicted, actual = classes[output.argmax(axis=1)], classes[self.labels]
        return np.concatenate([predicted * actual, predicted, actual], axis=1)

    def primary_from_means(self, means):
        """Macro-F1 from the means of primary_items (0 for a class neither present nor predicted)."""
        import numpy as np

        c = len(self.names)
        hits, total = means[..., :c], means[..., c : 2 * c] + means[..., 2 * c :]
        return np.mean(np.divide(2 * hits, total, out=np.zeros_like(total), where=total > 0), axis=-1)

    def __init__(self, arrays: dict, meta: dict, split: str = "test"):
        self.split = check_split(split)
        self.labels = arrays["labels"][arrays[f"idx_{split}"]]
        self.names = meta["labels"]

    def scores(self, output) -> dict:
        from seqbench.metrics import classification_metrics

        return classification_metrics(self.labels, output, len(self.names))

    def calibrate(self, run, test_output, val_output):
        return test_output

    def extra_tests(self, output_a, output_b) -> dict:
        """Tests of two seed ensembles, reported beside the verdict: a paired permutation test of
        macro-F1 and McNemar's exact test of accuracy."""
        from seqbench.stats import mcnemar_exact, paired_permutation_f1

        predicted_a, predicted_b = output_a.argmax(axis=1), output_b.argmax(axis=1)
        return {
            "ensemble_test": paired_permutation_f1(self.labels, predicted_a, predicted_b, len(self.names)),
            "accuracy_test": mcnemar_exact(predicted_a == self.labels, predicted_b == self.labels),
        }

    def curves(self, output) -> dict:
        from seqbench.metrics import roc_points

        return {"roc": roc_points(self.labels, output, len(self.names))}

    def context(self) -> None:
        return None  # the scores need nothing beside them

    def predictions_table(self, outputs: dict):
        import numpy as np
        import pandas as pd

        names = np.array(self.names, dtype=object)
        table = pd.DataFrame({"actual": names[self.labels]})
        for model, output in outputs.items():
            table[model] = names[output.argmax(axis=1)]
        return table

    def confusion_tables(self, predictions, models: list[str]) -> dict:
        """Per model, the actual and predicted class of each scored example: DVC's confusion
        template reads these."""
        return {model: predictions[["actual", model]].rename(columns={model: "predicted"}) for model in models}


class LabelledDataset(DatasetBase):
    """The settings every classification kind shares (text, video): its classes and their names."""

    # The classes, in the order of the model's outputs. Optional: when left out, prepare infers
    # them from the validated data (class_names: the distinct labels, sorted); when given, a row
    # with another label is quarantined.
    labels: Annotated[list[str], Field(min_length=2)] | None = None
    # How the report names each label (e.g. {"1": gun, "2": no gun}); the labels stay as they are.
    label_names: dict[str, str] = Field(default_factory=dict)

    @field_validator("labels", mode="before")
    @classmethod
    def _labels_as_strings(cls, value):
        # YAML reads `labels: [0, 1]` as ints; labels are compared as strings everywhere.
        return [str(v) for v in value] if isinstance(value, list) else value

    @field_validator("label_names", mode="before")
    @classmethod
    def _names_by_string(cls, value):
        return {str(key): str(name) for key, name in value.items()} if isinstance(value, dict) else value

    @model_validator(mode="after")
    def _named_labels_declared(self):
        # Every named label is a declared one (when labels are declared): a typo names nothing.
        unknown = [key for key in self.label_names if self.labels and key not in self.labels]
        if unknown:
            raise ValueError(f"label_names names {', '.join(unknown)}, not among the labels {', '.join(self.labels)}")
        return self
