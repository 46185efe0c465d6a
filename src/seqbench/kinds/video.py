"""Per-frame features of video clips: canonical schema `clip_id, frame, label, split, f_*`.

Sources may be long (one row per frame) or nested as aeon gives them ([clips, dims, frames] plus
labels). Clips may differ in length and have several feature dimensions. A clip that fails a
check is quarantined whole: a clip with a hole in it is not a clip.
"""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field, model_validator

from seqbench.errors import SchemaError
from seqbench.kinds import classify
from seqbench.kinds.base import (
    FLOAT_MAX,
    Check,
    assign_splits,
    coerce_numeric,
    labels_as_strings,
    map_columns,
    ragged,
    require_columns,
    split_column,
)
from seqbench.sources import NestedClips, keep_source_text, pop_source_text

COLUMNS = ("clip_id", "frame", "label", "split")  # plus one f_* column per feature
GROUP_KEY = "clip_id"
# The helper columns add_check_columns computes for GX -> (what a value means, the canonical
# columns it is computed from): the validation page shows these instead of the helper itself.
CHECK_COLUMNS = {
    "_clip_frames_contiguous": ("the clip's frames are 0, 1, 2, … in order", ("clip_id", "frame")),
    "_clip_labels": ("distinct labels in the clip", ("clip_id", "label")),
    "_clip_length": ("frames in the clip", ("clip_id", "frame")),
}


# ---- settings: the keys of a video dataset in params.yaml --------------------------------------


class VideoDataset(classify.LabelledDataset):
    kind: Literal["video"]
    class_weight: Literal["balanced", "none"] = "balanced"  # the classifier's loss, as for text
    min_frames: int = Field(2, gt=0)
    max_frames: int = Field(10_000, gt=0)

    @model_validator(mode="after")
    def _frame_bounds_ordered(self):
        if self.min_frames > self.max_frames:
            raise ValueError("min_frames must be <= max_frames")
        return self

    MAPPABLE: ClassVar[tuple[str, ...]] = COLUMNS


SETTINGS = VideoDataset


def feature_columns(df) -> list[str]:
    return [c for c in df.columns if str(c).startswith("f_")]


def canonicalize(tables: dict, cfg):
    import pandas as pd

    parts = []
    for key, data in tables.items():
        source = cfg.sources()[key]
        if isinstance(data, NestedClips):
            parts.append(_from_nested(data))
        else:
            parts.append(_from_long(data, key, cfg, source))
    df = pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0]
    # Frames in order within each clip; clips stay in the order they first appear.
    order = pd.factorize(df["clip_id"])[0]
    df = df.assign(_order=order).sort_values(["_order", "frame"], kind="stable")
    return pop_source_text(df.drop(columns="_order").reset_index(drop=True))


def _from_nested(data: NestedClips):
    import numpy as np
    import pandas as pd

    frames = []
    for i, (clip, label, split) in enumerate(zip(data.X, data.y, data.split)):
        clip = np.asarray(clip, dtype="float64")
        if clip.ndim == 1:
            clip = clip[np.newaxis, :]
        table = pd.DataFrame(clip.T, columns=[f"f_{d}" for d in range(clip.shape[0])])
        table.insert(0, "clip_id", f"{split}-{i:05d}")
        table.insert(1, "frame", np.arange(clip.shape[1], dtype="int64"))
        table.insert(2, "label", str(label))
        table.insert(3, "split", split)
        frames.append(table)
    df = pd.concat(frames, ignore_index=True)
    return df.astype({"clip_id": "string", "label": "string", "split": "string"})


def _from_long(df, key, cfg, source: str):
    import pandas as pd

    df = map_columns(df, cfg, source)
    require_columns(df, ["clip_id", "frame", "label"], source)
    features = [c for c in df.columns if c not in COLUMNS and pd.api.types.is_numeric_dtype(df[c])]
    if not features:
        raise SchemaError(f"{source}: no numeric feature columns besides {', '.join(COLUMNS)}")
    frame = coerce_numeric(df["frame"], "frame", source)
    out = pd.DataFrame(
        {
            "clip_id": df["clip_id"].astype("string"),
            "frame": frame.astype("Int64") if frame.notna().all() and (frame % 1 == 0).all() else frame,
            "label": labels_as_strings(df["label"]),
            "split": split_column(df, key),
        }
    )
    out = keep_source_text(out, df["frame"], "frame")
    for column in features:
        name = str(column) if str(column).startswith("f_") else f"f_{column}"
        out[name] = df[column].astype("float64")
    return out


def add_check_columns(df, cfg):
    """Per-clip facts, repeated on each of the clip's rows, for GX to check row by row."""
    clips = df.groupby("clip_id", sort=False)
    position = clips.cumcount()
    df = df.copy()
    df["_frame_in_place"] = df["frame"].astype("float64") == position
    df["_clip_frames_contiguous"] = df.groupby("clip_id", sort=False)["_frame_in_place"].transform("all")
    df["_clip_labels"] = clips["label"].transform("nunique")
    df["_clip_length"] = clips["frame"].transform("size")
    return df.drop(columns="_frame_in_place")


def checks(cfg, df) -> list[Check]:
    import great_expectations as gx

    E = gx.expectations
    found = [
        Check("has_rows", "table", E.ExpectTableRowCountToBeBetween(min_value=1)),
        Check(
            "frames_contiguous_from_0",
            "row",
            E.ExpectColumnValuesToBeInSet(column="_clip_frames_contiguous", value_set=[True]),
        ),
        Check("label_present", "row", E.ExpectColumnValuesToNotBeNull(column="label")),
        Check("one_label_per_clip", "row", E.ExpectColumnValuesToBeInSet(column="_clip_labels", value_set=[1])),
        Check(
            "clip_length_in_bounds",
            "row",
            E.ExpectColumnValuesToBeBetween(column="_clip_length", min_value=cfg.min_frames, max_value=cfg.max_frames),
        ),
    ]
    if cfg.labels:
        found.append(
            Check(
                "label_in_declared_set",
                "row",
                E.ExpectColumnValuesToBeInSet(column="label", value_set=list(cfg.labels)),
            )
        )
    # Finite features: a pair of expectations per feature column the table has.
    for column in feature_columns(df):
        found.append(Check(f"{column}_present", "row", E.ExpectColumnValuesToNotBeNull(column=column)))
        found.append(
            Check(
                f"{column}_finite",
                "row",
                E.ExpectColumnValuesToBeBetween(column=column, min_value=-FLOAT_MAX, max_value=FLOAT_MAX),
            )
        )
    if not found:
        found.append(Check("has_features", "table", E.ExpectTableColumnCountToBeBetween(min_value=len(COLUMNS) + 1)))
    return found


def summary(df, cfg) -> dict:
    clips = df.groupby("clip_id", sort=False).agg(
        label=("label", "first"), split=("split", "first"), length=("frame", "size")
    )
    return {
        **classify.labels_summary(clips["label"], cfg.labels),
        "clips": int(len(clips)),
        "clips_per_split": {str(k): int(v) for k, v in clips["split"].value_counts(dropna=False).items()},
        "clips_per_label": {str(k): int(v) for k, v in clips["label"].value_counts(dropna=False).items()},
        "feature_dims": len(feature_columns(df)),
        "clip_length": {"min": int(clips["length"].min()), "max": int(clips["length"].max())} if len(clips) else None,
    }


# ---- preparation: per-dimension standardisation fit on train, ragged clips ---------------------

TASK = "classify"
report_figures = classify.report_figures  # the confusion matrices and ROC curves
CROSS_VALIDATES = True  # exchangeable items: `validation: kfold` may pool training and validation


def clips_of(df):
    """(clip ids, per-clip feature arrays [frames, dims], per-clip label, per-clip split)."""
    features = feature_columns(df)
    groups = df.groupby("clip_id", sort=False)
    first = groups.first()
    values = [g[features].to_numpy("float64") for _, g in groups]
    return first.index.tolist(), values, first["label"], first["split"]


def prepare(df, cfg):
    import numpy as np

    clip_ids, values, clip_labels, clip_splits = clips_of(df)
    names = classify.class_names(clip_labels, cfg.labels)
    labels = np.array([names.index(label) for label in clip_labels], dtype="int64")
    splits = assign_splits(clip_splits, labels, cfg.splits)
    train_frames = np.concatenate([values[i] for i in splits["train"]])
    mean, std = train_frames.mean(axis=0), train_frames.std(axis=0)
    std[std == 0] = 1.0
    flat, offsets = ragged([(v - mean) / std for v in values], "float32")
    arrays = {
        "values": flat,
        "offsets": offsets,
        "labels": labels,
        "clip_ids": np.array(clip_ids, dtype="U"),
        **{f"idx_{s}": i.astype("int64") for s, i in splits.items()},
    }
    meta = {
        "task": TASK,
        "input": "features",
        "labels": names,
        "features": feature_columns(df),
        "feature_mean": mean.tolist(),
        "feature_std": std.tolist(),
        "input_size": int(flat.shape[1]),
        "sizes": {s: int(len(i)) for s, i in splits.items()},
        **classify.loss_weights(arrays, len(names), cfg),
    }
    return arrays, meta


# ---- prediction on new data -------------------------------------------------------------------


def predict_inputs(df, meta: dict):
    import numpy as np
    import pandas as pd

    from seqbench.batching import RaggedDataset

    require_columns(df, ["clip_id", "frame", *meta["features"]], "input")
    df = df.sort_values(["clip_id", "frame"], kind="stable")
    groups = df.groupby("clip_id", sort=False)
    mean, std = np.array(meta["feature_mean"]), np.array(meta["feature_std"])
    ids, clips = [], []
    for clip_id, frames in groups:
        ids.append(clip_id)
        clips.append((frames[meta["features"]].to_numpy("float64") - mean) / std)
    values, offsets = ragged(clips, "float32")
    dataset = RaggedDataset(values, offsets, np.zeros(len(ids), "int64"), np.arange(len(ids)))
    return dataset, pd.DataFrame({"clip_id": ids})


def format_predictions(rows, outputs, meta: dict):
    return classify.classification_output(rows, outputs, meta["labels"])


# ---- baselines (evaluate stage) ----------------------------------------------------------------


def baselines(arrays: dict, meta: dict, validated_path, split: str = "test") -> dict:
    """Class probabilities of the baselines on `split`'s clips: on the test split (the default)
    fit on the training and validation clips; on the validation split ("val") fit on the
    training clips alone, so the best baseline can be chosen there (classify.baseline_items).

    nn_dtw: aeon's 1-nearest-neighbour with dynamic time warping (full window), on the
    standardised clips, which may differ in length. majority: the class frequencies of the clips
    it is fit on.
    """
    import warnings

    import numpy as np
    from aeon.classification.distance_based import KNeighborsTimeSeriesClassifier

    values, offsets, labels = arrays["values"], arrays["offsets"], arrays["labels"]

    def clips(index):  # aeon's layout for unequal lengths: a list of [dims, frames] arrays
        return [np.ascontiguousarray(values[offsets[i] : offsets[i + 1]].T, dtype="float64") for i in index]

    fit, test = classify.baseline_items(arrays, split)
    n_classes = len(meta["labels"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # numba's type-safety chatter
        knn = KNeighborsTimeSeriesClassifier(distance="dtw", n_neighbors=1).fit(clips(fit), labels[fit])
        predicted = knn.predict(clips(test))
    return {
        "nn_dtw": np.eye(n_classes)[predicted],
        "majority": classify.majority_probabilities(labels[fit], len(test), n_classes),
    }


def describe_test(arrays: dict, validated_path):
    """The clip id of each test example, for the report's table of disagreements."""
    import pandas as pd

    return pd.Series(arrays["clip_ids"][arrays["idx_test"]], dtype="string")


# ---- scoring (evaluate stage) ------------------------------------------------------------------


def scorer(arrays: dict, meta: dict, split: str = "test") -> classify.ClassifierScorer:
    """The scorer of `split` ("test", or "val": the validation labels): the one all
    classification kinds share (kinds.base.Scorer)."""
    return classify.ClassifierScorer(arrays, meta, split)
