"""The recipes behind the CLI: fit, evaluate, predict. Each reads top to bottom (predicting itself lives in
predictions.py, which self-training shares).

    result = headstart.fit("builtin:digits", backbone="efficientnet-lite0", strategy="linear-probe",
                           image_size=64, out="runs/digits")
    headstart.evaluate("runs/digits", "builtin:digits")["accuracy"]
    headstart.predict("runs/digits", "new_images/")
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

from safetensors import SafetensorError

from . import __version__, backbones, distributed, strategies
from . import train as engine
from .baselines import BASELINE_NAME
from .checkpoints import Checkpoints, resumable, resume_folder, resume_out
from .config import RunSpec
from .data import data_path, load_examples, load_task
from .errors import HeadstartError
from .backbones import RUN_MARKER
from .evaluate import plot_learning_curve
from .evaluate.noise import score_interval
from .model_card import MODEL_CARD, model_card
from .model import WEIGHTS_FILE, TransferModel, check_modality
from .precision import resolve_precision
from .predictions import (PREDICTIONS_FILE, Prediction, check_inputs, csv_cell, predict_examples, prediction_rows,
                          write_predictions)
from .runs import (CONFIG_FILE, HISTORY_FILE, METRICS_FILE, MODEL_DIR, atomic_write_text, claim_out, claim_output,
                   default_run_dir, require_run, staged_run_dir, write_json, write_jsonl, write_yaml)
from .select.auto import AUTO, AUTO_FILE, describe_auto, resolve_auto
from .strategies import Plan
from .tasks import Task, task_of_marker
from .train import Callback, History
from .train.tracking import Tracker

NO_BACKBONE = "none"  # what a baseline run records as its backbone when none was given

__all__ = ["fit", "fit_spec", "run_spec", "describe_plan", "evaluate", "predict", "predict_examples", "write_predictions",
           "prediction_rows", "run_task", "csv_cell", "FitResult", "Prediction", "PREDICTIONS_FILE"]



@dataclass
class FitResult:
    run_dir: Path
    metrics: dict
    history: History
    model: TransferModel
    plan: Plan
    spec: RunSpec


def fit(train: str, test: str | None = None, *, backbone: str | None = None, strategy: str = "linear-probe",
        epochs: int | None = None, lr: float | None = None, batch_size: int = 32, image_size: int | None = None,
        max_length: int = 128, long: str = "truncate",
        weights: str | None = None, precision: str | None = None, seed: int = 0,
        min_steps: int = 0, augment: str = "none", train_size: int | None = None, on_bad_image: str = "skip",
        out: str | Path | None = None,
        overwrite: bool = False, show_progress: bool = True, budget: str | None = None,
        task: str | None = None, resume: bool = False, text_column: str | None = None,
        image_column: str | None = None, label_column: str | None = None, log_with: str | None = None,
        log_dir: str | None = None) -> FitResult:
    """Train a backbone + new head on TRAIN with a strategy (or "auto": race the likely ones), test it, save a run.
    Every epoch is checkpointed beside `out`; `resume=True` continues an interrupted run into `out`."""
    spec = run_spec(train, test, backbone=backbone, strategy=strategy, epochs=epochs, lr=lr, batch_size=batch_size,
                    image_size=image_size, max_length=max_length, long=long,
                    weights=weights, precision=precision, seed=seed,
                    min_steps=min_steps, augment=augment, train_size=train_size, on_bad_image=on_bad_image,
                    budget=budget, task=task,
                    text_column=text_column, image_column=image_column, label_column=label_column,
                    log_with=log_with, log_dir=log_dir)
    return fit_spec(spec, out, overwrite, show_progress, resume)


def run_spec(train: str, test: str | None = None, *, backbone: str | None = None, strategy: str = "linear-probe",
             epochs: int | None = None, lr: float | None = None, batch_size: int = 32, image_size: int | None = None,
             max_length: int = 128, long: str = "truncate",
             weights: str | None = None, precision: str | None = None, seed: int = 0,
             min_steps: int = 0, augment: str = "none", train_size: int | None = None, on_bad_image: str = "skip",
             budget: str | None = None, task: str | None = None, text_column: str | None = None,
             image_column: str | None = None, label_column: str | None = None, log_with: str | None = None,
             log_dir: str | None = None) -> RunSpec:
    """The validated RunSpec of fit's options; every problem is reported at once. Only the baseline needs no
    backbone (its run records the name 'none')."""
    if backbone is None:
        if strategy != BASELINE_NAME:
            raise HeadstartError(f"fit --strategy {strategy} reuses a pretrained backbone: give --backbone NAME "
                                 "(only --strategy baseline needs none)")
        backbone = NO_BACKBONE
    return RunSpec.build({
        "data": {"train": str(train), "test": None if test is None else str(test), "train_size": train_size,
                 "on_bad_image": on_bad_image, "task": task, "text_column": text_column,
                 "image_column": image_column, "label_column": label_column},
        "backbone": {"name": backbone, "weights": weights, "image_size": image_size, "max_length": max_length,
                     "long": long},
        "strategy": {"name": strategy, "epochs": epochs, "lr": lr, "budget": budget},
        "train": {"batch_size": batch_size, "precision": precision, "seed": seed, "min_steps": min_steps,
                  "augment": augment},
        "log": {"log_with": log_with, **({} if log_dir is None else {"log_dir": str(log_dir)})},
    })


def fit_spec(spec: RunSpec, out: str | Path | None = None, overwrite: bool = False,
             show_progress: bool = True, resume: bool = False) -> FitResult:
    """`fit` from a RunSpec (e.g. a saved config.yaml): the same spec and seed give the same run."""
    out = resume_out(out, resume) or default_run_dir(spec.backbone.name, spec.strategy.name)
    distributed.check_batch_size(spec.train.batch_size)
    if spec.strategy.name == AUTO:
        distributed.single_process_only("--strategy auto", "its race is timed by each process's clock; run it in "
                                        "one process, then fit the strategy it chose with several")
    if not distributed.is_main():  # a data-parallel helper: trains in step with the main process, writes nothing
        return _fit(spec, out, overwrite, False, Checkpoints(resume_folder(out), writes=False) if resume else None,
                    writes=False)
    with claim_out(out, overwrite, spec.inputs()):  # before any work, so a clash costs nothing
        with resumable(out, "fit", spec.to_dict(), resume, overwrite) as checkpoints:
            return _fit(spec, out, overwrite, show_progress, checkpoints, writes=True)


@dataclass
class Trained:
    """What training a spec on loaded data gives: the spec as run (auto resolved, precision and task filled in),
    its plan, the model, its history, and auto's race (None for a named strategy)."""
    spec: RunSpec
    plan: Plan
    model: TransferModel
    history: History
    race: object | None


def train_task(spec: RunSpec, data, show_progress: bool = True, checkpoints: Checkpoints | None = None,
               callbacks: Sequence[Callback] = ()) -> Trained:
    """The one recipe from a spec and its data to a trained model (fit and the scikit-learn estimators):
    --strategy auto races the plausible plans, a named strategy trains its plan (with the engine `callbacks`)."""
    child = (lambda name: checkpoints.child(name)) if checkpoints is not None else (lambda name: None)
    race = trained = None
    if spec.strategy.name == AUTO:  # not a plan: race the plausible plans; the winner comes back trained
        spec, race, trained = resolve_auto(spec, data, show_progress, child("auto"))
        data.notes.extend(race.notes())
    plan = strategies.plan(spec.strategy.name, spec.strategy.epochs, spec.strategy.lr)
    spec = spec.model_copy(deep=True)
    # Classical features predict in fp32: a TF-IDF logit sums thousands of small terms that bf16 would round.
    spec.train.precision = "fp32" if plan.init == "classical" else resolve_precision(spec.train.precision)
    spec.data.task = data.task.kind  # as inferred from the data: printed and saved, so that a rerun reads the same
    spec.headstart_version = __version__
    model, history = trained or _train(spec, plan, data, show_progress, child("train"), callbacks)
    return Trained(spec, plan, model, history, race)


def _fit(spec: RunSpec, out: Path, overwrite: bool, show_progress: bool, checkpoints: Checkpoints | None,
         writes: bool) -> FitResult:
    """Train, test and (when `writes`: the main process of a data-parallel run, or the only one) save the run."""
    data = load_task(spec.data, spec.train.seed)
    tracker = Tracker(spec.log, out.name, spec.to_dict()) if spec.log.log_with and writes else None
    if tracker is not None:
        engine.progress.console.print(f"logging to {spec.log.log_with}: {tracker.where}", highlight=False,
                                      soft_wrap=True)
    with tracker or nullcontext():  # a run that fails is marked failed in the tracker
        trained = train_task(spec, data, show_progress, checkpoints, [tracker] if tracker else ())
        spec, plan, model, history, race = trained.spec, trained.plan, trained.model, trained.history, trained.race

        predictions = predict_examples(model, data.test, spec.train.precision, show_progress)
        metrics = scored(model.task, data.test.labels, predictions, spec.train.seed)
        if tracker is not None:
            tracker.finish(history, metrics, {"strategy": plan.strategy, "precision": spec.train.precision,
                                              "task": spec.data.task})  # the facts added below are in history
    metrics.update(best_epoch=history.best_epoch, best_val_accuracy=history.best_val_accuracy,
                   train_seconds=round(history.seconds, 2), n_train=len(data.train), n_val=len(data.val))

    if not writes:
        return FitResult(out, metrics, history, model, plan, spec)
    with staged_run_dir(out, overwrite) as stage:
        write_yaml(stage / CONFIG_FILE, {"run": spec.to_dict(), "plan": plan.to_dict(), "notes": data.notes})
        write_json(stage / METRICS_FILE, metrics)
        if race is not None:
            write_json(stage / AUTO_FILE, race.to_dict())
        write_jsonl(stage / HISTORY_FILE, [r.to_dict() for r in history.records])
        write_predictions(stage / model.task.predictions_file, predictions, model.task)
        model.save(stage / MODEL_DIR)
        title = f"{spec.backbone.name} / {plan.strategy}"
        plot_learning_curve([r.to_dict() for r in history.records], stage / "learning_curve.png", title,
                            data.task.score_name)
        model.task.plot_test(data.test.labels, [p.label for p in predictions], metrics, stage, title)
        atomic_write_text(stage / MODEL_CARD, model_card(out, spec, plan, len(model.backbone.layer_groups()), data,
                                                         history, metrics, race is not None))
    return FitResult(out, metrics, history, model, plan, spec)


def _train(spec: RunSpec, plan: Plan, data, show_progress: bool, checkpoints: Checkpoints | None,
           callbacks: Sequence[Callback]) -> tuple[TransferModel, History]:
    """A new model trained by the plan: the pretrained backbone with a new head, seeded (auto's race builds the same)."""
    model = engine.new_model(spec.backbone, data, spec.train.seed, plan)  # as auto's race builds it
    check_modality(model.backbone, spec.backbone.name, spec.data.train, data.modality)
    engine.check_plan(plan, model.backbone, data, spec.train)  # before the plan is printed as if it would run
    engine.progress.console.print(f"task: {data.task.kind}\n{plan.describe(len(model.backbone.layer_groups()))}",
                                  highlight=False)
    return model, engine.run(model, data, plan, spec.train, spec.train.precision, show_progress, callbacks,
                             checkpoints)


def describe_plan(spec: RunSpec) -> str:
    """The plan a spec would run, against its backbone's layer groups: what `fit --dry-run` prints. The data is
    not read, but a path that names nothing is refused, as the run would."""
    for source in (spec.data.train, spec.data.test):
        if source is not None and not source.startswith("builtin:"):
            data_path(source)
    if spec.strategy.name == AUTO:
        return describe_auto(spec)
    plan = strategies.plan(spec.strategy.name, spec.strategy.epochs, spec.strategy.lr)
    if plan.init == "classical":  # no backbone to load: the features are fitted on the training data
        return plan.describe(0)
    backbone = backbones.load(spec.backbone)
    strategies.check_fits(plan, backbone)
    return plan.describe(len(backbone.layer_groups()))


def scored(task: Task, truth: list, predictions: list[Prediction], seed: int) -> dict:
    """The test metrics, with the bootstrap interval of the task's score under 'interval' (fit and evaluate)."""
    predicted = [p.label for p in predictions]
    return {**task.metrics(truth, predicted), "interval": score_interval(task, truth, predicted, seed)}


def run_task(run_dir: str | Path) -> Task:
    """The Task a saved run was trained for (its kind, classes or scale), read from its model marker alone."""
    model_dir = require_run(Path(run_dir))
    facts = json.loads((model_dir / RUN_MARKER).read_text(encoding="utf-8"))
    return task_of_marker(facts, str(model_dir / RUN_MARKER))


def _open_run(run_dir: str | Path) -> tuple[TransferModel, RunSpec]:
    model_dir = require_run(Path(run_dir))
    spec = RunSpec.from_yaml(Path(run_dir) / CONFIG_FILE)
    try:
        return TransferModel.load(model_dir), spec
    except SafetensorError as err:
        raise HeadstartError(f"cannot load {model_dir / WEIGHTS_FILE} ({err}); the run is damaged, "
                             "rerun the fit") from None


def evaluate(run_dir: str | Path, test: str, output: str | Path | None = None, show_progress: bool = True) -> dict:
    """Metrics of a saved run on labelled TEST data; written to `output` as JSON when given."""
    with claim_output(output, METRICS_FILE, [run_dir, test], (".json",)) as output:  # before any work
        model, spec = _open_run(run_dir)
        examples = load_examples(test, labelled=True, on_bad_image=spec.data.on_bad_image, kind=model.task.kind,
                                 columns=spec.data.columns(), run_columns=True)  # those the model was trained from
        check_inputs(model, examples)
        model.task.check_known(examples.labels, test)
        predictions = predict_examples(model, examples, spec.train.precision, show_progress)
        metrics = scored(model.task, examples.labels, predictions, spec.train.seed)
        if output is not None:
            write_json(output, metrics)
    return metrics


def predict(run_dir: str | Path, inputs: str, output: str | Path | None = None, show_progress: bool = True,
            csv_safe: bool = False) -> list[Prediction]:
    """The model's label and its probability for every input; written as CSV (input,label,score) when given."""
    with claim_output(output, PREDICTIONS_FILE, [run_dir, inputs], (".csv", ".jsonl")) as output:  # before any work
        model, spec = _open_run(run_dir)
        examples = load_examples(inputs, labelled=False, on_bad_image=spec.data.on_bad_image, kind=model.task.kind,
                                 columns=spec.data.columns(), run_columns=True)
        predictions = predict_examples(model, examples, spec.train.precision, show_progress)
        if output is not None:
            write_predictions(output, predictions, model.task, csv_safe)
    return predictions
