"""fit / evaluate / predict end to end on tiny real data: every strategy, reload equality, reruns."""

from __future__ import annotations

import csv
import json

import pytest
import yaml

import headstart
from headstart.config import RunSpec
from headstart.strategies import STRATEGIES
from headstart.train import pairs

IMAGE = dict(backbone="efficientnet-lite0", image_size=32, batch_size=16, show_progress=False)


def _strategy_examples():
    """Every registered strategy, with an argument where it takes one: adding a strategy adds it here."""
    return [f"{name}:2" if STRATEGIES.get(name)[2] else name for name in STRATEGIES.names()]


@pytest.mark.parametrize("strategy", _strategy_examples())
def test_every_strategy_trains_tests_and_saves_a_run(strategy, digit_folders, tmp_path, monkeypatch):
    train, test = digit_folders
    monkeypatch.setattr(pairs, "MAX_PAIRS", 320)  # setfit: 20 steps of pairs, not 5 epochs of 160 (three minutes)
    if strategy == "lora":  # a ConvNet has no attention to adapt (test_regularised runs lora on text)
        with pytest.raises(headstart.HeadstartError, match="attention projections"):
            headstart.fit(str(train), str(test), strategy=strategy, epochs=5, out=tmp_path / "run", **IMAGE)
        assert not (tmp_path / "run").exists()
        return
    epochs = 1 if strategy == "setfit" else 5
    result = headstart.fit(str(train), str(test), strategy=strategy, epochs=epochs, out=tmp_path / "run", **IMAGE)
    run = tmp_path / "run"
    for name in ("config.yaml", "metrics.json", "history.jsonl", "predictions.csv", "model/model.safetensors",
                 "model/headstart-model.json", "learning_curve.png", "confusion_matrix.png", "README.md"):
        assert (run / name).is_file(), name
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["labels"] == ["0", "1", "2", "3"]
    assert metrics["n"] == 40 and sum(map(sum, metrics["confusion_matrix"])) == 40
    assert set(metrics["per_class"]["0"]) == {"precision", "recall", "f1", "support"}
    assert metrics == result.metrics
    # Pretrained ImageNet features separate these digits at once; scratch has no such head start.
    floor = 0.0 if strategy == "scratch" else 0.8
    assert metrics["accuracy"] >= floor, metrics["accuracy"]
    history = [json.loads(line) for line in (run / "history.jsonl").read_text().splitlines()]
    assert history[0]["epoch"] == 0 and len(history) >= 2
    config = yaml.safe_load((run / "config.yaml").read_text())
    assert config["plan"]["strategy"] == strategy and config["run"]["train"]["precision"] in ("fp32", "bf16")


def test_text_lp_ft_then_predict_and_evaluate_agree_exactly_after_reload(review_csvs, tmp_path):
    train, test = review_csvs
    result = headstart.fit(str(train), str(test), backbone="minilm-l6", strategy="lp-ft", epochs=1, max_length=32,
                           out=tmp_path / "run", show_progress=False)
    assert result.plan.strategy == "lp-ft" and [r.phase for r in result.history.records][:2] == ["probe", "probe"]
    saved = list(csv.DictReader(open(tmp_path / "run" / "predictions.csv", encoding="utf-8")))
    headstart.predict(tmp_path / "run", str(test), output=tmp_path / "again.csv", show_progress=False)
    again = list(csv.DictReader(open(tmp_path / "again.csv", encoding="utf-8")))
    assert saved == again  # same labels and bit-identical scores from the reloaded model
    metrics = headstart.evaluate(tmp_path / "run", str(test), show_progress=False)
    assert metrics["accuracy"] == result.metrics["accuracy"]
    assert metrics["confusion_matrix"] == result.metrics["confusion_matrix"]
    assert metrics["interval"] == result.metrics["interval"]  # the same seed resamples the same test examples


def test_the_model_card_says_what_the_run_files_say(review_csvs, tmp_path):
    train, test = review_csvs
    result = headstart.fit(str(train), str(test), backbone="minilm-l6", strategy="linear-probe", epochs=2,
                           max_length=32, out=tmp_path / "run", show_progress=False)
    card, metrics = (tmp_path / "run" / "README.md").read_text(), result.metrics
    interval = metrics["interval"]
    assert interval["metric"] == "accuracy" and interval["low"] <= metrics["accuracy"] <= interval["high"]
    assert card.startswith("# run: minilm-l6 / linear-probe, classification")
    assert f"`{train}`, {metrics['n_train']} examples to train on and {metrics['n_val']} to validate on" in card
    assert f"Test: `{test}`, {metrics['n']} examples" in card and "2 labels: `fresh`, `rotten`." in card
    assert result.plan.describe(6) in card and f"| accuracy | {metrics['accuracy']:.4f} |" in card
    assert f"bootstrap interval {interval['low']:.4f} to {interval['high']:.4f} (200 resamples" in card
    assert f"headstart predict {tmp_path / 'run'} INPUTS" in card and "tokenizer" in card


def test_image_predictions_of_a_reloaded_run_equal_the_saved_ones(digit_folders, tmp_path):
    train, test = digit_folders
    headstart.fit(str(train), str(test), strategy="full", epochs=2, out=tmp_path / "run", **IMAGE)
    saved = (tmp_path / "run" / "predictions.csv").read_text()
    headstart.predict(tmp_path / "run", str(test), output=tmp_path / "again.csv", show_progress=False)
    assert (tmp_path / "again.csv").read_text() == saved
    assert saved.splitlines()[0] == "input,label,score" and saved.splitlines()[1].startswith("0/")


def test_a_rerun_from_the_saved_config_gives_the_same_metrics(digit_folders, tmp_path):
    train, test = digit_folders
    first = headstart.fit(str(train), str(test), strategy="freeze:4", epochs=2, out=tmp_path / "a", **IMAGE)
    spec = RunSpec.from_yaml(tmp_path / "a" / "config.yaml")
    second = headstart.fit_spec(spec, tmp_path / "b", show_progress=False)
    timeless = lambda metrics: {k: v for k, v in metrics.items() if k != "train_seconds"}
    assert timeless(second.metrics) == timeless(first.metrics)
    assert (tmp_path / "a" / "predictions.csv").read_text() == (tmp_path / "b" / "predictions.csv").read_text()


def test_builtin_data_without_test_uses_a_stratified_hold_out(tmp_path):
    result = headstart.fit("builtin:digits", train_size=200, strategy="linear-probe", epochs=5,
                           out=tmp_path / "run", **IMAGE)
    assert result.metrics["n"] == 40 and result.metrics["n_train"] + result.metrics["n_val"] == 160
    assert all(s["support"] == 4 for s in result.metrics["per_class"].values())
    assert "hold-out" in yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())["notes"][0]


def test_a_run_directory_is_reused_as_a_backbone(digit_folders, tmp_path):
    train, test = digit_folders
    headstart.fit(str(train), str(test), strategy="full", epochs=2, out=tmp_path / "source", **IMAGE)
    reused = headstart.fit(str(train), str(test), **{**IMAGE, "backbone": str(tmp_path / "source")},
                           strategy="linear-probe", epochs=5, out=tmp_path / "target")
    assert reused.metrics["accuracy"] >= 0.6
    source_model = headstart.model.TransferModel.load(tmp_path / "source" / "model")
    assert all((a == b).all() for a, b in zip(source_model.backbone.state_dict().values(),
                                              reused.model.backbone.state_dict().values()))
