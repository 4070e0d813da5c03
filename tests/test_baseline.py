"""--strategy baseline: TF-IDF / pixels + the task's scikit-learn estimator, saved and served as any run."""

from __future__ import annotations

import csv
import json

import numpy as np
import yaml
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression, RidgeCV
from sklearn.model_selection import GridSearchCV, StratifiedKFold
from sklearn.preprocessing import StandardScaler

import headstart
from headstart import api
from headstart.backbones.classical import PixelFeatures
from headstart.config import RunSpec
from headstart.data import load_task
from headstart.model import TransferModel

from test_bad_input import one_error, run_cli
from test_tasks import tables  # noqa: F401 (a fixture)


def test_baseline_run_is_sklearns_model_served_and_reloaded_exactly(review_csvs, tmp_path):
    train, test = review_csvs
    code, output = run_cli("fit", train, "--test", test, "--strategy", "baseline", "--out", tmp_path / "run")
    assert code == 0, output  # no --backbone needed
    folder = tmp_path / "run"
    files = {p.name for p in (folder / "model").iterdir()}
    assert files == {"headstart-model.json", "model.safetensors", "tfidf-vocabulary.json"}  # nothing pickled
    spec = RunSpec.from_yaml(folder / "config.yaml")
    assert spec.strategy.name == "baseline" and spec.train.precision == "fp32"
    # The head holds what scikit-learn fits: the training examples' TF-IDF, and a tuned logistic regression on the
    # training and validation examples (the validation split folded back, as its note says).
    data = load_task(spec.data, spec.train.seed)
    tfidf = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True).fit(data.train.inputs)
    search = lambda part: GridSearchCV(  # noqa: E731
        LogisticRegression(max_iter=2000), {"C": [0.1, 1.0, 10.0, 100.0]},
        cv=StratifiedKFold(3, shuffle=True, random_state=0)).fit(tfidf.transform(part.inputs), part.labels)
    reference = search(data.train.joined(data.val))
    model = TransferModel.load(folder / "model")
    ours = model.predict_proba(data.test.inputs)
    theirs = reference.predict_proba(tfidf.transform(data.test.inputs))
    assert np.abs(ours - theirs[:, [list(reference.classes_).index(c) for c in model.classes]]).max() < 1e-5
    # Its validation score is the same fit's on the training examples alone: validation was held out from it.
    held_out = search(data.train).predict(tfidf.transform(data.val.inputs))
    history = [json.loads(line) for line in (folder / "history.jsonl").read_text().splitlines()]
    assert abs(history[-1]["val_accuracy"] - np.mean(held_out == np.array(data.val.labels))) < 1e-6
    # predict and evaluate read the saved run: bit-identical to the run's own predictions and metrics
    saved = list(csv.reader(open(folder / "predictions.csv", encoding="utf-8")))
    code, output = run_cli("predict", folder, test, "--output", tmp_path / "again.csv", "--quiet")
    assert code == 0, output
    assert list(csv.reader(open(tmp_path / "again.csv", encoding="utf-8"))) == saved
    metrics = json.loads((folder / "metrics.json").read_text())
    assert api.evaluate(folder, str(test), show_progress=False)["accuracy"] == metrics["accuracy"]
    notes = " ".join(yaml.safe_load((folder / "config.yaml").read_text())["notes"])
    assert "TF-IDF of words and word pairs" in notes and "C = " in notes and "(the 108 training and 12 validation examples" in notes
    # ONNX cannot hold scikit-learn's tokenisation: one line, nothing written
    code, output = run_cli("export", folder, "--out", tmp_path / "model.onnx")
    assert "--strategy baseline run" in one_error(code, output) and not (tmp_path / "model.onnx").exists()


def test_regression_baseline_head_predicts_what_ridge_predicts(tables, tmp_path):  # noqa: F811
    folder = tables / "regression"
    result = headstart.fit(str(folder / "train.csv"), str(folder / "test.csv"), strategy="baseline",
                           out=tmp_path / "run", show_progress=False)
    data = load_task(result.spec.data, 0)
    pixels = lambda examples: PixelFeatures.pixels(examples.inputs).double().numpy()  # noqa: E731
    scaler = StandardScaler().fit(pixels(data.train))  # the pixels' scaling from the training examples
    everything = data.train.joined(data.val)  # the ridge on them and the validation examples, folded back
    ridge = RidgeCV(alphas=[0.1, 1.0, 10.0, 100.0]).fit(scaler.transform(pixels(everything)), everything.labels)
    ours = result.model.predict_proba(data.test.inputs)[:, 0]
    theirs = ridge.predict(scaler.transform(pixels(data.test)))
    assert np.abs(ours - theirs).max() < 1e-3 * np.std(data.train.labels)
    assert result.metrics["task"] == "regression" and np.isfinite(result.metrics["r2"])


def test_auto_races_the_baseline_and_fit_needs_a_backbone_otherwise(review_csvs, tmp_path):
    train, test = review_csvs
    code, output = run_cli("fit", train, "--strategy", "auto", "--backbone", "minilm-l6", "--dry-run")
    assert code == 0 and output.count("baseline") >= 2, output  # in both of the race's candidate lists
    assert "--backbone" in one_error(*run_cli("fit", train, "--strategy", "full", "--out", tmp_path / "run"))
    code, output = run_cli("fit", train, "--strategy", "baseline", "--dry-run")
    assert code == 0 and "TF-IDF" in output, output
    code, output = run_cli("compare", train, "--backbone", "minilm-l6", "--strategies", "baseline,linear-probe",
                           "--out", tmp_path / "cmp")
    assert "runs the baseline on every split already" in one_error(code, output)
