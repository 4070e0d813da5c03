"""--log-with: what a fit logs to TensorBoard and MLflow, read back with each tracker's own reader."""

from __future__ import annotations

import json

import pytest

from headstart.config import LogSpec
from headstart.train import EpochRecord, History
from headstart.train.tracking import PROJECT, Tracker, mlflow_uri
from test_bad_input import one_error, run_cli

IMAGES = ("--backbone", "efficientnet-lite0", "--image-size", "32", "--train-size", "100", "--quiet")


def history_of(run) -> list[dict]:
    return [json.loads(line) for line in (run / "history.jsonl").read_text().splitlines()]


def tensorboard_scalars(folder) -> dict[str, list[tuple[int, float]]]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(folder))
    events.Reload()
    return {tag: [(e.step, e.value) for e in events.Scalars(tag)] for tag in events.Tags()["scalars"]}


def test_tensorboard_gets_every_epoch_the_learning_rates_and_the_test_metrics(tmp_path):
    code, output = run_cli("fit", "builtin:digits", *IMAGES, "--strategy", "lp-ft", "--epochs", "2",
                           "--log-with", "tensorboard", "--log-dir", tmp_path / "logs", "--out", tmp_path / "run")
    assert code == 0, output
    assert f"logging to tensorboard: {tmp_path / 'logs' / 'run'}" in output
    history, metrics = history_of(tmp_path / "run"), json.loads((tmp_path / "run" / "metrics.json").read_text())
    scalars = tensorboard_scalars(tmp_path / "logs" / "run")
    assert scalars["val/score"] == [(r["epoch"], pytest.approx(r["val_accuracy"])) for r in history]
    assert scalars["val/loss"] == [(r["epoch"], pytest.approx(r["val_loss"])) for r in history]
    assert scalars["train/loss"] == [(r["epoch"], pytest.approx(r["train_loss"])) for r in history[1:]]
    assert [step for step, _ in scalars["lr/head"]] == [r["epoch"] for r in history]
    assert scalars["lr/backbone"] == [(r["epoch"], pytest.approx(r["backbone_lr"])) for r in history[3:]]
    assert all(r["backbone_lr"] is None for r in history[:3])  # the probe phase trains the head alone
    assert scalars["lr/head"][0][1] > 0 and all(r["lr"] is not None for r in history)
    assert scalars["test/accuracy"] == [(history[-1]["epoch"], pytest.approx(metrics["accuracy"]))]
    hparams = list((tmp_path / "logs" / "run").glob("*/hparams.yml"))
    assert any("strategy.name: lp-ft" in path.read_text() for path in hparams)


def test_mlflow_gets_the_config_as_parameters_the_curve_and_what_auto_chose(tmp_path):
    import mlflow

    code, output = run_cli("fit", "builtin:digits", *IMAGES, "--strategy", "auto", "--epochs", "2",
                           "--log-with", "mlflow", "--log-dir", tmp_path / "logs", "--out", tmp_path / "run")
    assert code == 0, output
    client = mlflow.tracking.MlflowClient(mlflow_uri(tmp_path / "logs"))
    (run,) = client.search_runs([client.get_experiment_by_name(PROJECT).experiment_id])
    assert run.info.run_name == "run" and run.info.status == "FINISHED"
    chosen = json.loads((tmp_path / "run" / "auto.json").read_text())["winner"]
    assert run.data.params["strategy.name"] == "auto" and run.data.params["resolved.strategy"] == chosen
    assert run.data.params["backbone.name"] == "efficientnet-lite0" and run.data.params["train.seed"] == "0"
    history = history_of(tmp_path / "run")  # auto's winner trains inside the race: its curve is logged at the end
    logged = [(m.step, m.value) for m in client.get_metric_history(run.info.run_id, "val/score")]
    assert logged == [(r["epoch"], pytest.approx(r["val_accuracy"])) for r in history]
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert run.data.metrics["test/macro_f1"] == pytest.approx(metrics["macro_f1"])


def test_a_resumed_run_logs_each_epoch_once(tmp_path):
    """A tracker logs the records it has not logged: a resumed run's restored history is logged once, in full."""
    tracker = Tracker(LogSpec(log_with="tensorboard", log_dir=str(tmp_path)), "run", {"a": {"b": None, "c": [1]}})
    records = [EpochRecord("probe", epoch, 0.1 * epoch, 1.0, None if epoch == 0 else 2.0, 0.1, 0.01) for epoch in range(4)]
    tracker.log_history(History(records[:2]))
    tracker.log_history(History(records[:2]))
    tracker.finish(History(records), {"accuracy": 0.5, "labels": ["x"]}, {"strategy": "full"})
    scalars = tensorboard_scalars(tmp_path / "run")
    assert [step for step, _ in scalars["val/score"]] == [0, 1, 2, 3]
    assert scalars["test/accuracy"] == [(3, 0.5)] and "lr/backbone" not in scalars


def test_bad_tracker_options_are_one_line(tmp_path):
    (tmp_path / "file").write_text("x")
    error = one_error(*run_cli("fit", "builtin:digits", *IMAGES, "--log-with", "wandb", "--out", tmp_path / "a"))
    assert "log_with" in error and "'tensorboard' or 'mlflow'" in error and "wandb" in error
    error = one_error(*run_cli("fit", "builtin:digits", *IMAGES, "--log-with", "tensorboard",
                               "--log-dir", tmp_path / "file", "--out", tmp_path / "b"))
    assert error == f"error: --log-dir {tmp_path / 'file'} is a file; give a folder"
    assert not (tmp_path / "b").exists()


def test_a_failed_fit_leaves_its_mlflow_run_failed_not_running(tmp_path):
    import mlflow

    error = one_error(*run_cli("fit", "builtin:digits", *IMAGES, "--strategy", "freeze:99", "--log-with", "mlflow",
                               "--log-dir", tmp_path / "logs", "--out", tmp_path / "run"))
    assert "freeze:99" in error and not (tmp_path / "run").exists()
    client = mlflow.tracking.MlflowClient(mlflow_uri(tmp_path / "logs"))
    (run,) = client.search_runs([client.get_experiment_by_name(PROJECT).experiment_id])
    assert run.info.status == "FAILED"
