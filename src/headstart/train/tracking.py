"""Experiment trackers through Accelerate's: TensorBoard event files or an MLflow store, on this disk only.

A Tracker is a callback: at every epoch's end it logs the history records it has not logged yet (losses, the
validation score, the learning rates), so that a resumed run logs its whole curve, and a strategy raced by auto
(whose epochs happen inside the race) logs its winner's when the caller hands over the history. `finish` logs
the test metrics and closes the tracker.

    with Tracker(spec.log, "digits-full", spec.to_dict()) as tracker:  # a failure marks the run failed
        engine.run(..., callbacks=[tracker]); tracker.finish(history, metrics, resolved)
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from accelerate import Accelerator

from ..config import LogSpec
from ..errors import HeadstartError
from .events import Callback, State
from .history import History

__all__ = ["Tracker", "flat_params", "mlflow_uri", "PROJECT"]

PROJECT = "headstart"  # the MLflow experiment every run is logged under
_NEEDS = {"tensorboard": ("tensorboard", "tensorboard"), "mlflow": ("mlflow", "mlflow-skinny sqlalchemy alembic")}


def mlflow_uri(log_dir: str | Path) -> str:
    """The MLflow store in log_dir: a SQLite file (MLflow's plain-folder store is frozen and refused by default)."""
    return f"sqlite:///{(Path(log_dir).expanduser().resolve() / 'mlflow.db').as_posix()}"


def flat_params(config: dict, prefix: str = "") -> dict:
    """A nested config as tracker parameters: dotted keys, values str/int/float/bool (None and lists as text)."""
    params = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            params.update(flat_params(value, f"{name}."))
        else:
            params[name] = value if isinstance(value, (str, int, float, bool)) else str(value)
    return params


class Tracker(Callback):
    """One run in the tracker `log.log_with` names, under `run_name`, with `config` as its parameters."""

    def __init__(self, log: LogSpec, run_name: str, config: dict):
        module, package = _NEEDS[log.log_with]
        if importlib.util.find_spec(module) is None:
            raise HeadstartError(f"--log-with {log.log_with} needs {package}: pip install {package}")
        log_dir = Path(log.log_dir).expanduser()
        if log_dir.exists() and not log_dir.is_dir():
            raise HeadstartError(f"--log-dir {log_dir} is a file; give a folder")
        log_dir.mkdir(parents=True, exist_ok=True)
        kwargs = {}
        if log.log_with == "mlflow":
            import mlflow

            mlflow.set_tracking_uri(mlflow_uri(log_dir))
            kwargs = {"mlflow": {"run_name": run_name, "logging_dir": str((log_dir / "artifacts").resolve())}}
        self.accelerator = Accelerator(log_with=log.log_with, project_dir=log_dir)
        project = PROJECT if log.log_with == "mlflow" else run_name  # TensorBoard's folder is DIR/project
        self.accelerator.init_trackers(project, config=flat_params(config), init_kwargs=kwargs)
        self.where = mlflow_uri(log_dir) if log.log_with == "mlflow" else str(log_dir / run_name)
        self.log_with = log.log_with
        self.logged = 0
        self.closed = False

    def __enter__(self) -> "Tracker":
        return self

    def __exit__(self, kind, error, trace) -> None:
        if kind is not None and not self.closed:  # an error or a Ctrl-C before finish(): the run did not succeed
            self.fail()

    def fail(self) -> None:
        """Close the tracker with its run marked failed (MLflow's FAILED), so that it does not stay RUNNING."""
        if self.log_with == "mlflow":
            import mlflow

            mlflow.end_run(status="FAILED")  # Accelerate's own end_run below then finds no active run
        self.accelerator.end_training()
        self.closed = True

    def on_epoch_end(self, state: State) -> None:
        self.log_history(state.history)

    def log_history(self, history: History) -> None:
        """Log the records not logged yet, each at its epoch (0 is before training)."""
        for record in history.records[self.logged:]:
            values = {"val/score": record.val_accuracy, "val/loss": record.val_loss, "train/loss": record.train_loss,
                      "lr/head": record.lr, "lr/backbone": record.backbone_lr}
            self.accelerator.log({k: v for k, v in values.items() if v is not None}, step=record.epoch)
        self.logged = len(history.records)

    def finish(self, history: History, metrics: dict, resolved: dict) -> None:
        """The rest of the history, the test metrics (numbers only) at the last epoch, and what the run decided
        as it went (`resolved`: auto's strategy, the precision, the task) as parameters; the tracker closes."""
        self.log_history(history)
        for tracker in self.accelerator.trackers:
            tracker.store_init_configuration(flat_params(resolved, "resolved."))
        numbers = {f"test/{k}": v for k, v in metrics.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
        self.accelerator.log(numbers, step=history.records[-1].epoch if history.records else 0)
        self.accelerator.end_training()
        self.closed = True
