"""A tag per word (tokens): Brown part-of-speech tags and WNUT-16 named entities (IOB2) end to end (fit, evaluate, predict, every
strategy, compare, rank), the JSONL and CoNLL formats, entity metrics by hand, and their errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from headstart import api
from headstart import rank as api_rank
from headstart.data import load_examples
from headstart.tasks import TokensTask, token_metrics
from headstart.tasks.tokens import MostFrequentTag

from test_bad_input import one_error, run_cli
from test_fit import _strategy_examples

TEXT = ["--backbone", "minilm-l6", "--quiet"]


@pytest.fixture(scope="module")
def brown(tmp_path_factory):
    """Short real Brown sentences as a user would bring them: train.jsonl and test.conll (POS tags); and real
    tweets with their named entities in IOB2 (ner_train.jsonl, ner_test.jsonl: WNUT-16, each with an entity)."""
    root = tmp_path_factory.mktemp("brown")
    examples = load_examples("builtin:brown-pos")
    short = [i for i, words in enumerate(examples.inputs) if 4 <= len(words) <= 20]
    order = np.random.default_rng(0).permutation(short)
    train, test = order[:80], order[80:110]
    tweets = load_examples("builtin:wnut16")
    named = np.random.default_rng(0).permutation([i for i, tags in enumerate(tweets.labels)
                                                  if len(tags) <= 30 and any(t != "O" for t in tags)])
    for name, source, index in (("train.jsonl", examples, train), ("ner_train.jsonl", tweets, named[:80]),
                                ("ner_test.jsonl", tweets, named[80:110])):
        with open(root / name, "w") as f:
            for i in index:
                f.write(json.dumps({"tokens": source.inputs[i], "tags": source.labels[i]}) + "\n")
    with open(root / "test.conll", "w") as f:
        f.write("-DOCSTART- O\n\n")
        for i in test:
            f.write("".join(f"{w}\t{t}\n" for w, t in zip(examples.inputs[i], examples.labels[i])) + "\n")
    with open(root / "words.jsonl", "w") as f:
        for i in test:
            f.write(json.dumps({"tokens": examples.inputs[i]}) + "\n")
    return root


@pytest.fixture(scope="module")
def run(brown):
    code, output = run_cli("fit", brown / "train.jsonl", "--test", brown / "test.conll", *TEXT, "--strategy",
                           "linear-probe", "--out", brown / "run")
    assert code == 0, output
    return brown / "run", output


def test_words_get_their_part_of_speech_from_cached_per_word_features(run, brown):
    folder, output = run
    metrics = json.loads((folder / "metrics.json").read_text())
    assert metrics["task"] == "tokens" and metrics["n"] == 30 and "entity_f1" not in metrics
    words = sum(len(json.loads(line)["tokens"]) for line in open(brown / "words.jsonl"))
    assert metrics["n_words"] == words and set(metrics) >= {"token_accuracy", "macro_f1", "per_tag"}
    # Tagging every word 'nn' (the commonest tag) scores about 0.15 on Brown news.
    assert metrics["token_accuracy"] > 0.5
    assert "task: tokens" in output and "token accuracy" in output and "features cached" in output
    assert (folder / "per_tag_f1.png").is_file()


def test_a_tagger_predicts_every_word_and_reloads_bit_identically(run, brown, tmp_path):
    folder, _ = run
    saved = [json.loads(line) for line in open(folder / "predictions.jsonl")]
    assert set(saved[0]) == {"tokens", "tags", "scores"}
    assert all(len(p["tags"]) == len(p["tokens"]) == len(p["scores"]) for p in saved)
    code, output = run_cli("predict", folder, brown / "words.jsonl", "--output", tmp_path / "again.jsonl", "--quiet")
    assert code == 0, output
    assert [json.loads(line) for line in open(tmp_path / "again.jsonl")] == saved
    again = api.evaluate(folder, str(brown / "test.conll"), show_progress=False)
    assert again["token_accuracy"] == json.loads((folder / "metrics.json").read_text())["token_accuracy"]
    rows = api.predict(folder, str(brown / "words.jsonl"), show_progress=False)
    assert rows[0].input == saved[0]["tokens"] and rows[0].label == saved[0]["tags"]


@pytest.mark.parametrize("strategy", _strategy_examples())
def test_every_strategy_trains_a_tagger(brown, tmp_path, strategy):
    code, output = run_cli("fit", brown / "ner_test.jsonl", *TEXT, "--strategy", strategy, "--epochs", "1",
                           "--out", tmp_path / "run")
    if strategy in ("baseline", "setfit"):  # no classical model to serve; no one class per example to pair by
        refusal = "a tag per word has no classical model" if strategy == "baseline" else "pairs examples by their class"
        assert refusal in one_error(code, output)
        assert not (tmp_path / "run").exists()
        return
    assert code == 0, output
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["task"] == "tokens" and 0 <= metrics["token_accuracy"] <= 1 and "entity_f1" in metrics


def test_iob_tags_get_entity_metrics(brown, tmp_path):
    code, output = run_cli("fit", brown / "ner_train.jsonl", "--test", brown / "ner_test.jsonl", *TEXT,
                           "--strategy", "full", "--epochs", "3", "--out", tmp_path / "run")
    assert code == 0, output
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert set(metrics) >= {"entity_precision", "entity_recall", "entity_f1", "per_type", "token_accuracy"}
    test_types = {t[2:] for line in open(brown / "ner_test.jsonl") for t in json.loads(line)["tags"] if t != "O"}
    assert set(metrics["per_type"]) == test_types and "person" in test_types
    assert metrics["token_accuracy"] > 0.7  # 'O' everywhere scores about 0.85 on these tweets, and 0 entity F1
    assert "entity F1" in output


def test_compare_and_rank_a_tagger_against_the_most_frequent_tag(brown, tmp_path):
    code, output = run_cli("compare", brown / "train.jsonl", *TEXT, "--task", "tokens", "--strategies", "linear-probe",
                           "--epochs", "2", "--folds", "2", "--shot-steps", "0", "--out", tmp_path / "c")
    assert code == 0, output
    summary = json.loads((tmp_path / "c" / "summary.json").read_text())
    assert summary["score"]["key"] == "token_accuracy" and summary["task"]["kind"] == "tokens"
    assert set(summary["strategies"]) == {"scratch", "linear-probe", "baseline"}
    assert summary["strategies"]["baseline"]["token_accuracy_mean"] > 0.5  # most frequent tag of each word
    rows = api_rank(str(brown / "train.jsonl"), backbones="minilm-l6,minilm-l6:random", show_progress=False)
    # A random encoder keeps each word's identity, which is most of a part of speech: LogME may rank it either
    # way here, so only its presence and the class scores' absence are the contract.
    assert all(np.isfinite(r["logme"]) and r["leep"] is None and r["nce"] is None for r in rows)


def test_token_metrics_by_hand():
    truth = [["B-PER", "I-PER", "O", "B-LOC"], ["O", "B-LOC"]]
    predicted = [["B-PER", "I-PER", "O", "O"], ["O", "B-LOC"]]
    metrics = token_metrics(truth, predicted, iob=True)
    assert metrics["token_accuracy"] == 5 / 6
    assert metrics["entity_precision"] == 1.0 and metrics["entity_recall"] == 2 / 3  # 2 of 3 spans found
    assert metrics["entity_f1"] == pytest.approx(0.8)
    assert metrics["per_type"]["LOC"]["recall"] == 0.5 and metrics["per_type"]["PER"]["f1"] == 1.0
    cut = token_metrics([["B-PER", "I-PER"]], [["B-PER", "O"]], iob=True)
    assert cut["entity_f1"] == 0.0  # a span counts only when exact
    task = TokensTask.from_labels(truth)
    assert task.iob and task.score_key == "entity_f1" and TokensTask.from_dict(task.to_dict()).tags == task.tags
    assert list(task.encode([["O", "B-PER"], ["UNSEEN"]])) == [task.tags.index("O"), task.tags.index("B-PER"), -100]


def test_the_most_frequent_tag_baseline_by_hand():
    model = MostFrequentTag().fit([["The", "dog", "runs"], ["the", "runs"], ["a", "run"]],
                                  [["at", "nn", "vbz"], ["at", "nns"], ["at", "nn"]])
    assert model.predict([["THE", "runs", "Zebra"]]) == [["at", "vbz", "at"]]  # ties: first seen; unseen: commonest


@pytest.fixture
def files(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    good = "".join(json.dumps({"tokens": ["a", "b"], "tags": ["x", "y"]}) + "\n" for _ in range(20))
    (tmp_path / "lengths.jsonl").write_text(good + json.dumps({"tokens": ["a", "b"], "tags": ["x"]}) + "\n")
    (tmp_path / "iob.jsonl").write_text(json.dumps({"tokens": ["Ann", "ran"], "tags": ["B-PER", "VERB"]}) + "\n")
    (tmp_path / "words.jsonl").write_text(json.dumps({"tokens": "not a list", "tags": ["x"]}) + "\n")
    (tmp_path / "good.jsonl").write_text(good)
    (tmp_path / "labels.csv").write_text("text,label\n" + "".join(f"t{i},{'xy'[i % 2]}\n" for i in range(20)))
    (tmp_path / "one.conll").write_text("The DT\ncat\n\n")
    return tmp_path


@pytest.mark.parametrize("args, expected", [
    (["fit", "lengths.jsonl", *TEXT], ["lengths.jsonl, line 21: 2 tokens but 1 tags"]),
    (["fit", "iob.jsonl", *TEXT], ["iob.jsonl, line 1: tag 'VERB' is not IOB2"]),
    (["fit", "words.jsonl", *TEXT], ["words.jsonl, line 1: 'tokens' must be a non-empty JSON list of words"]),
    (["fit", "good.jsonl", "--backbone", "efficientnet-lite0"], ["reads images but good.jsonl holds texts"]),
    (["fit", "labels.csv", *TEXT, "--task", "tokens"], ["labels.csv has no 'tokens' or 'tags' column"]),
    (["fit", "one.conll", *TEXT], ["one.conll, line 2: 'cat' has a token but no tag"]),
    (["fit", "labels.csv", "--test", "good.jsonl", *TEXT], ["good.jsonl: a 'tokens' column (a list of words) goes "
                                                            "with a 'tags' column"]),
    (["fit", "good.jsonl", "--test", "labels.csv", *TEXT], ["labels.csv has no 'tokens' or 'tags' column"]),
    (["fit", "labels.csv", "--test", "one.conll", *TEXT], ["one.conll is a CoNLL file (a tag per word), which is "
                                                           "--task tokens, not classification"]),
    (["compare", "labels.csv", "--test", "good.jsonl", *TEXT], ["good.jsonl: a 'tokens' column"]),
    (["compare", "labels.csv", *TEXT, "--task", "tokens"], ["labels.csv has no 'tokens' or 'tags' column"]),
])
def test_bad_tags_get_one_line(files, args, expected):
    error = one_error(*run_cli(*args))
    for text in expected:
        assert text in error, error


def test_auto_races_taggers_on_words_and_the_winner_reruns_exactly(brown, tmp_path):
    run = tmp_path / "run"
    code, output = run_cli("fit", brown / "train.jsonl", "--test", brown / "test.conll", *TEXT, "--strategy", "auto",
                           "--epochs", "2", "--precision", "fp32", "--out", run)
    assert code == 0, output
    record = json.loads((run / "auto.json").read_text())
    assert record["advice"]["measurements"]["probe_score"] == "accuracy"  # per word, over the tags
    assert record["winner"] in record["candidates"]
    code, output = run_cli("fit", "--config", run / "config.yaml", "--out", tmp_path / "again", "--quiet")
    assert code == 0, output
    assert (tmp_path / "again" / "predictions.jsonl").read_text() == (run / "predictions.jsonl").read_text()


def test_odd_words_are_read_and_tagged_each_from_its_own_subwords(tmp_path):
    (tmp_path / "odd.conll").write_text("10\u00a0000 cd\nmiles nns\n\t\nA at\n\u200b nn\ndog nn\n")
    examples = load_examples(str(tmp_path / "odd.conll"))
    assert examples.inputs == [["10\u00a0000", "miles"], ["A", "\u200b", "dog"]]  # U+00A0 is inside a word
    from headstart.backbones import load
    from headstart.config import BackboneSpec

    batch = load(BackboneSpec(name="minilm-l6")).preprocess(examples.inputs)
    positions = batch["word_index"][1].tolist()
    assert len(set(positions)) == 3  # the zero-width word reads the unknown token, not its neighbour's subword


def test_a_tagger_predicts_a_table_that_also_has_texts(run, brown, tmp_path):
    folder, _ = run
    lines = [json.loads(line) for line in open(brown / "words.jsonl")][:3]
    (tmp_path / "both.jsonl").write_text("".join(json.dumps({"text": " ".join(r["tokens"]), **r}) + "\n"
                                                 for r in lines))
    rows = api.predict(folder, str(tmp_path / "both.jsonl"), show_progress=False)
    assert [r.input for r in rows] == [r["tokens"] for r in lines]


def test_unseen_test_tags_are_named_and_count_as_errors():
    task = TokensTask.from_labels([["at", "nn"]])
    with pytest.warns(UserWarning, match=r"tags \['zz'\] are not tags of"):
        task.check_known([["at", "zz"]], "test.jsonl")
    assert task.evidence([["at", "zz"]]).tolist() == [[1.0, 0.0], [0.0, 0.0]]  # one row per word, kept in place


def test_self_training_refuses_a_pool_of_words_for_whole_texts(files, review_csvs):
    train, _ = review_csvs
    error = one_error(*run_cli("self-train", train, "--unlabeled", "good.jsonl", *TEXT, "--strategy",
                               "linear-probe"))
    assert "good.jsonl holds lists of words but the training data reads whole texts" in error


def test_a_sentence_longer_than_max_length_is_read_in_pieces_every_word_its_own_features():
    from headstart.backbones import load
    from headstart.config import BackboneSpec

    backbone = load(BackboneSpec(name="minilm-l6", max_length=16))
    words = [f"word{i}" for i in range(40)]  # about 100 subwords
    batch = backbone.preprocess([["A", "dog"], words])
    assert batch["input_ids"].shape[1] <= 16 and len(batch["input_ids"]) > 2  # the long one in several pieces
    assert int(batch["word_mask"].sum()) == 42
    with torch.no_grad():
        features = backbone.eval()(batch)
    assert features.shape == (42, backbone.dim)
    with torch.no_grad():
        alone = backbone(backbone.preprocess([["A", "dog"]]))
    assert torch.allclose(features[:2], alone, atol=1e-5)  # a short sentence reads as it did alone
