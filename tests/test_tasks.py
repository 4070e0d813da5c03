"""Tasks beyond one label: regression and multi-label end to end (fit, evaluate, predict, every strategy), their
formats and errors."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from PIL import Image

from headstart import api
from headstart import advise as api_advise
from headstart import rank as api_rank
from headstart.data import load_examples
from headstart.tasks import RegressionTask, regression_metrics

from test_bad_input import one_error, run_cli
from test_fit import _strategy_examples

IMAGE = ["--backbone", "efficientnet-lite0", "--image-size", "32", "--quiet"]


def _image_table(root, name: str, builtin: str, column: str, size: int, cell) -> None:
    """Real images of a built-in set written as a user would have them: PNG files, and train.csv / test.csv
    with an 'image' column and the kind's label column (train `size`, test 40)."""
    examples = load_examples(builtin)
    order = np.random.default_rng(0).permutation(len(examples))[:size + 40]
    (root / name).mkdir()
    for part, index in (("train", order[:size]), ("test", order[size:])):
        with open(root / name / f"{part}.csv", "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["image", column])
            for i in index:
                Image.fromarray(examples.inputs[i]).save(root / name / f"{i}.png")
                writer.writerow([f"{i}.png", cell(examples.labels[i])])


@pytest.fixture(scope="module")
def tables(tmp_path_factory):
    """regression: Ising spin images and their temperatures; multilabel: pairs of real digits tagged with both."""
    root = tmp_path_factory.mktemp("tables")
    _image_table(root, "regression", "builtin:ising", "target", 100, repr)
    _image_table(root, "multilabel", "builtin:digit-pairs", "labels", 200, "|".join)
    return root


@pytest.fixture(scope="module")
def ising(tables):
    return tables / "regression"


@pytest.fixture(scope="module")
def run(ising):
    code, output = run_cli("fit", ising / "train.csv", "--test", ising / "test.csv", *IMAGE,
                           "--strategy", "linear-probe", "--out", ising / "run")
    assert code == 0, output
    return ising / "run", output


def test_a_numeric_target_is_a_regression_learnt_far_better_than_the_mean(run):
    folder, output = run
    metrics = json.loads((folder / "metrics.json").read_text())
    assert metrics["task"] == "regression" and metrics["n"] == 40
    assert set(metrics) >= {"r2", "mae", "rmse", "spearman"}
    assert metrics["r2"] > 0.5 and metrics["spearman"] > 0.7  # the mean of the targets scores R^2 = 0
    assert "task: regression" in output and "R²" in output
    assert "task: regression" in (folder / "config.yaml").read_text()  # inferred, saved: a rerun reads the same
    assert (folder / "predicted_vs_true.png").is_file() and not (folder / "confusion_matrix.png").exists()


def test_a_regression_run_is_a_backbone_without_a_source_head(run, ising, tmp_path):
    folder, _ = run
    code, output = run_cli("fit", ising / "test.csv", "--backbone", folder, "--strategy", "linear-probe", "--epochs",
                           "1", "--quiet", "--out", tmp_path / "again")
    assert code == 0, output
    rows = api_rank(str(ising / "test.csv"), backbones=str(folder), show_progress=False)
    assert rows[0]["logme"] is not None and rows[0]["leep"] is None


def test_a_regression_run_reloads_to_the_same_numbers(run, ising):
    folder, _ = run
    saved = list(csv.reader(open(folder / "predictions.csv")))
    assert saved[0] == ["input", "prediction"]
    code, output = run_cli("predict", folder, ising / "test.csv", "--output", ising / "again.csv", "--quiet")
    assert code == 0, output
    assert list(csv.reader(open(ising / "again.csv"))) == saved  # bit-identical values after reload
    metrics = api.evaluate(folder, str(ising / "test.csv"), show_progress=False)
    assert metrics["r2"] == json.loads((folder / "metrics.json").read_text())["r2"]
    predictions = api.predict(folder, str(ising / "test.csv"), show_progress=False)
    assert isinstance(predictions[0].label, float) and predictions[0].score is None


@pytest.mark.parametrize("kind", ["regression", "multilabel"])
@pytest.mark.parametrize("strategy", _strategy_examples())
def test_every_strategy_trains_every_kind(tables, tmp_path, strategy, kind):
    code, output = run_cli("fit", tables / kind / "test.csv", *IMAGE, "--strategy", strategy, "--epochs", "1",
                           "--out", tmp_path / "run")
    if strategy == "lora":  # a ConvNet has no attention to adapt, whatever the task (test_regularised: text)
        assert "attention projections" in one_error(code, output) and not (tmp_path / "run").exists()
        return
    if strategy == "setfit":  # pairs need one class per example
        assert "pairs examples by their class" in one_error(code, output) and not (tmp_path / "run").exists()
        return
    assert code == 0, output
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["task"] == kind and np.isfinite(metrics["rmse" if kind == "regression" else "micro_f1"])


def test_multilabel_tags_are_learnt_with_a_tuned_threshold_and_reload_exactly(tables, tmp_path):
    folder = tables / "multilabel"
    code, output = run_cli("fit", folder / "train.csv", "--test", folder / "test.csv", *IMAGE, "--strategy",
                           "linear-probe", "--out", tmp_path / "run")
    assert code == 0, output
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["task"] == "multilabel" and set(metrics["per_label"]) == {str(d) for d in range(10)}
    # Tagging every digit on every pair gives micro-F1 0.32 (precision 0.19); chance tagging less.
    assert metrics["micro_f1"] > 0.45 and 0.05 <= metrics["threshold"] <= 0.95
    saved = list(csv.reader(open(tmp_path / "run" / "predictions.csv")))
    assert saved[0] == ["input", "labels", *(f"score:{d}" for d in range(10))]
    code, output = run_cli("predict", tmp_path / "run", folder / "test.csv", "--output", tmp_path / "again.csv",
                           "--quiet")
    assert code == 0 and list(csv.reader(open(tmp_path / "again.csv"))) == saved
    again = api.evaluate(tmp_path / "run", str(folder / "test.csv"), show_progress=False)
    assert again["micro_f1"] == metrics["micro_f1"] and again["threshold"] == metrics["threshold"]


@pytest.mark.parametrize("kind, key, name", [("regression", "r2", "R²"), ("multilabel", "micro_f1", "micro-F1")])
def test_compare_measures_every_kind_against_scratch_and_its_baseline(tables, tmp_path, kind, key, name):
    code, output = run_cli("compare", tables / kind / "train.csv", *IMAGE, "--strategies", "linear-probe",
                           "--epochs", "2", "--folds", "2", "--shot-steps", "0", "--out", tmp_path / "c")
    assert code == 0, output
    summary = json.loads((tmp_path / "c" / "summary.json").read_text())
    assert summary["score"]["key"] == key and summary["task"]["kind"] == kind
    assert set(summary["strategies"]) == {"scratch", "linear-probe", "baseline"}
    probe = summary["strategies"]["linear-probe"]
    assert len(probe[f"{key}_per_fold"]) == 2 and "confusion_matrix" not in probe
    assert set(summary["benefits"]["linear-probe"]) == {"start", "slope", "asymptote"}
    page = (tmp_path / "c" / "report.html").read_text()
    assert f"best mean {name}" in page and not (tmp_path / "c" / "confusion_matrix.png").exists()
    assert name in output and "Use " in output
    error = one_error(*run_cli("compare", tables / kind / "train.csv", *IMAGE, "--shots", "8", "--out", tmp_path / "d"))
    assert "labelled subsets are drawn per class" in error


@pytest.mark.parametrize("kind", ["regression", "multilabel"])
def test_rank_scores_every_kind_with_logme_and_leaves_the_class_scores_out(tables, kind):
    rows = api_rank(str(tables / kind / "train.csv"), backbones="efficientnet-lite0,efficientnet-lite0:random",
                    image_size=32, show_progress=False)
    by_name = {r["backbone"]: r for r in rows}
    assert by_name["efficientnet-lite0"]["logme"] > by_name["efficientnet-lite0:random"]["logme"]
    assert all(r[m] is None for r in rows for m in ("hscore", "leep", "nce"))


def test_multilabel_reads_json_lists_and_separated_tags(tmp_path):
    (tmp_path / "tags.jsonl").write_text('{"text": "a", "labels": ["x", "y"]}\n{"text": "b", "labels": ["y"]}\n')
    (tmp_path / "tags.csv").write_text('text,labels\na,"[""x"", ""y""]"\nb,y\nc, x | y \n')
    assert load_examples(str(tmp_path / "tags.jsonl")).labels == [["x", "y"], ["y"]]
    examples = load_examples(str(tmp_path / "tags.csv"))
    assert examples.kind == "multilabel" and examples.labels == [["x", "y"], ["y"], ["x", "y"]]


def test_text_with_a_target_column_is_a_regression(tmp_path, review_csvs):
    """Real reviews, each with a real number: its length in words."""
    rows = list(csv.DictReader(open(review_csvs[0])))
    with open(tmp_path / "lengths.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["text", "target"])
        writer.writerows([r["text"], len(r["text"].split())] for r in rows[:60])
    code, output = run_cli("fit", tmp_path / "lengths.csv", "--backbone", "minilm-l6", "--epochs", "2", "--quiet",
                           "--out", tmp_path / "run")
    assert code == 0, output
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["task"] == "regression"


def test_regression_metrics_by_hand():
    metrics = regression_metrics([1.0, 2.0, 3.0, 4.0], [1.0, 2.0, 3.0, 6.0])
    assert metrics["mae"] == 0.5 and metrics["rmse"] == 1.0 and metrics["r2"] == pytest.approx(1 - 4 / 5)
    assert metrics["spearman"] == 1.0
    assert regression_metrics([2.0, 2.0], [1.0, 3.0])["r2"] is None  # undefined, and strict JSON says null
    task = RegressionTask.from_labels([10.0, 20.0, 30.0])
    assert np.allclose(task.encode([20.0]), [0.0]) and RegressionTask.from_dict(task.to_dict()).std == task.std


@pytest.fixture
def files(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "words.csv").write_text("text,target\n" + "".join(f"t{i},{i}\n" for i in range(20)) + "t20,many\n")
    (tmp_path / "labels.csv").write_text("text,label\n" + "".join(f"t{i},{'xy'[i % 2]}\n" for i in range(20)))
    (tmp_path / "tags.csv").write_text("text,labels\na,x|y\nb,\n")
    (tmp_path / "nested.jsonl").write_text('{"text": "a", "labels": [["x"]]}\n')
    (tmp_path / "imgs" / "a").mkdir(parents=True)
    return tmp_path


@pytest.mark.parametrize("args, expected", [
    (["fit", "words.csv", "--backbone", "minilm-l6"], ["words.csv, line 22: 'target' is 'many'", "not a finite number"]),
    (["fit", "labels.csv", "--backbone", "minilm-l6", "--task", "regression"], ["labels.csv has no 'target' column"]),
    (["fit", "imgs", "--backbone", "efficientnet-lite0", "--task", "regression"], ["imgs is an image folder",
                                                                                  "--task regression"]),
    (["fit", "labels.csv", "--backbone", "minilm-l6", "--task", "regresion"], ["unknown task 'regresion'",
                                                                              "did you mean 'regression'"]),
    (["fit", "builtin:ising", "--backbone", "efficientnet-lite0", "--task", "classification"],
     ["builtin:ising is a regression data set"]),
    (["fit", "tags.csv", "--backbone", "minilm-l6"], ["tags.csv, row 3: empty 'text' or 'labels'"]),
    (["fit", "nested.jsonl", "--backbone", "minilm-l6"], ["nested.jsonl, line 1: 'labels' holds a nested list"]),
    (["self-train", "builtin:ising", "--unlabeled", "imgs", "--backbone", "efficientnet-lite0", "--strategy",
      "linear-probe", "--quiet"],
     ["builtin:ising holds regression targets", "self-train works on class labels and tag sets only so far"]),
])
def test_bad_targets_get_one_line(files, args, expected):
    error = one_error(*run_cli(*args))
    for text in expected:
        assert text in error, error


@pytest.mark.parametrize("kind, probe", [("regression", "R²"), ("multilabel", "R²")])
def test_advise_and_auto_choose_for_every_kind_and_the_winner_reruns_exactly(tables, tmp_path, kind, probe):
    folder = tables / kind
    advice = api_advise(str(folder / "train.csv"), backbone="efficientnet-lite0", image_size=32, show_progress=False)
    assert advice.measurements["probe_score"] == probe and advice.strategy
    assert advice.measurements["probe_pretrained"] > advice.measurements["chance"]
    run = tmp_path / "run"
    code, output = run_cli("fit", folder / "train.csv", "--test", folder / "test.csv", *IMAGE, "--strategy", "auto",
                           "--epochs", "2", "--precision", "fp32", "--out", run)
    assert code == 0, output
    record = json.loads((run / "auto.json").read_text())
    assert record["winner"] in record["candidates"] and json.loads((run / "metrics.json").read_text())["task"] == kind
    code, output = run_cli("fit", "--config", run / "config.yaml", "--out", tmp_path / "again", "--quiet")
    assert code == 0, output
    assert (tmp_path / "again" / "predictions.csv").read_text() == (run / "predictions.csv").read_text()


def test_self_training_pseudo_labels_tag_sets(tables, tmp_path):
    """Multi-label self-training: the teacher's most confident tag sets (its tuned threshold) join the training
    data; the pool's own tags only measure the pseudo-labels."""
    folder = tables / "multilabel"
    examples = load_examples("builtin:digit-pairs")
    used = {row[0] for name in ("train.csv", "test.csv") for row in csv.reader(open(folder / name))}
    pool = [i for i in np.random.default_rng(1).permutation(len(examples)) if f"{i}.png" not in used][:120]
    with open(tmp_path / "pool.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["image", "labels"])
        for i in pool:
            Image.fromarray(examples.inputs[i]).save(tmp_path / f"{i}.png")
            writer.writerow([f"{i}.png", "|".join(examples.labels[i])])
    code, output = run_cli("self-train", folder / "train.csv", "--unlabeled", tmp_path / "pool.csv", "--test",
                           folder / "test.csv", *IMAGE, "--strategy", "linear-probe", "--rounds", "2",
                           "--out", tmp_path / "run")
    assert code == 0, output
    rounds = json.loads((tmp_path / "run" / "rounds.json").read_text())["rounds"]
    assert rounds[1]["n_pseudo"] == 30  # a quarter of the pool: the curriculum's first step, one group
    assert set(rounds[1]["pseudo_labels"]) == {str(d) for d in range(10)}  # counted per tag
    assert 0 <= rounds[1]["pseudo_label_accuracy"] <= 1  # whole tag sets right (the pool's tags known)
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["task"] == "multilabel" and "micro_f1" in metrics
    assert (tmp_path / "run" / "per_label_f1.png").is_file() and "validation micro-F1" in output


def test_a_tag_set_is_as_sure_as_its_least_sure_decision_and_an_empty_one_comes_last():
    from headstart.tasks import MultilabelTask

    task = MultilabelTask(["a", "b", "c"], threshold=0.5)
    scores = task.pseudo_scores(np.array([[0.9, 0.2, 0.1], [0.02, 0.02, 0.02], [0.6, 0.99, 0.01]]))
    assert scores.argmax(1).tolist() == [0, 0, 0]  # one group: the pool is not split between tags
    assert scores[:, 0].tolist() == pytest.approx([0.8, 0.0, 0.6])
