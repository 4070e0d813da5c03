"""Self-training: a teacher labels the unlabelled data, a student learns from both, the best round is kept.

    result = headstart.self_train("labelled.csv", "unlabelled.csv", backbone="minilm-l6", strategy="linear-probe",
                                  rounds=3, selection="curriculum", curriculum_step=0.25, out="runs/self-train")
    result.best_round, result.rounds[result.best_round]["test_accuracy"], result.metrics["accuracy"]

The recipe: (1) split the labelled data as fit does and read the unlabelled pool (its labels, if any, are
set aside for the report); (2) train a teacher on the labelled data; (3) predict the pool and keep the
pseudo-labels it is most sure of (a growing share per round, split between the classes by the smaller of
their labelled and predicted shares by default: Curriculum Labeling, Cascante-Bonilla et al. 2021; or an
absolute threshold); (4) train a student, fresh from the same pretrained backbone with the same strategy,
on labelled + pseudo-labelled data; (5) evaluate it; the student is the next round's teacher unless its
validation accuracy dropped (a tie goes to the student, which saw more data: a few-shot validation set is
too small to tell them apart). Test data is looked at only to report, never to choose.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from .. import __version__, backbones, strategies
from .. import train as engine
from ..api import run_spec
from ..predictions import check_words, predict_examples, write_predictions
from ..checkpoints import Checkpoints, resumable, resume_out
from ..config import DataSpec, RunSpec
from ..data import Examples, TaskData, load_examples, load_task
from ..data.augment import augment_images
from ..errors import HeadstartError
from ..evaluate import plot_learning_curve
from ..model import TransferModel, check_modality
from ..precision import resolve_precision
from ..runs import (CONFIG_FILE, HISTORY_FILE, METRICS_FILE, MODEL_DIR, claim_out, default_run_dir, staged_run_dir,
                    write_json, write_jsonl, write_yaml)
from ..train import History
from ..train.cache import content_digest
from ._pseudo import PseudoLabels, pseudo_label_accuracy, select_curriculum, select_pseudo_labels
from ._report import plot_rounds, round_record
from ._spec import SelfTrainSpec

__all__ = ["self_train", "self_train_from_config", "self_train_from_spec", "SelfTrainResult", "SelfTrainSpec",
           "select_pseudo_labels", "select_curriculum", "ROUNDS_FILE", "NOISE_DROPOUT"]

ROUNDS_FILE = "rounds.json"
PLOT_FILE = "self_training.png"
NOISE_DROPOUT = 0.5  # Noisy Student's dropout before the classifier
EVAL_BATCH = engine.engine.EVAL_BATCH


@dataclass
class SelfTrainResult:
    run_dir: Path
    metrics: dict        # the kept model on the test set, as metrics.json
    rounds: list[dict]   # rounds.json's records; round 0 is the teacher
    best_round: int
    model: TransferModel
    history: History     # the kept model's training
    spec: RunSpec
    options: SelfTrainSpec


@dataclass
class _Round:
    number: int
    model: TransferModel
    history: History
    record: dict
    predictions: list    # the test set's Predictions, as predictions.csv holds them


def self_train(train: str, unlabeled: str, test: str | None = None, *, backbone: str, strategy: str,
               rounds: int = 3, selection: str = "curriculum", class_shares: str = "smaller",
               curriculum_step: float = 0.25, threshold: float | None = None, per_class_cap: int | None = None,
               noise: bool = False,
               epochs: int | None = None, lr: float | None = None, batch_size: int = 32, image_size: int | None = None,
               max_length: int = 128, long: str = "truncate",
               weights: str | None = None, precision: str | None = None, seed: int = 0,
               min_steps: int = 0, train_size: int | None = None, on_bad_image: str = "skip",
               out: str | Path | None = None, overwrite: bool = False, show_progress: bool = True,
               resume: bool = False, text_column: str | None = None, image_column: str | None = None,
               label_column: str | None = None) -> SelfTrainResult:
    """Train a teacher on TRAIN, pseudo-label UNLABELED, train students on both; save the best round as a run."""
    options = SelfTrainSpec.build({"unlabeled": str(unlabeled), "rounds": rounds, "selection": selection,
                                   "class_shares": class_shares, "curriculum_step": curriculum_step,
                                   "threshold": threshold, "per_class_cap": per_class_cap, "noise": noise})
    spec = run_spec(train, test, backbone=backbone, strategy=strategy, epochs=epochs, lr=lr, batch_size=batch_size,
                    image_size=image_size, max_length=max_length, long=long,
                    weights=weights, precision=precision, seed=seed,
                    min_steps=min_steps, train_size=train_size, on_bad_image=on_bad_image, text_column=text_column,
                    image_column=image_column, label_column=label_column)
    return self_train_from_spec(spec, options, out, overwrite, show_progress, resume)


def self_train_from_config(config: str | Path, out: str | Path | None = None, overwrite: bool = False,
                           show_progress: bool = True, resume: bool = False) -> SelfTrainResult:
    """Rerun a self-training run from its config.yaml: the same data, options and seed, so the same rounds."""
    options = SelfTrainSpec.from_yaml(config)  # first: a config.yaml of another command fails naming self-train
    return self_train_from_spec(RunSpec.from_yaml(config), options, out, overwrite, show_progress, resume)


def self_train_from_spec(spec: RunSpec, options: SelfTrainSpec, out: str | Path | None = None,
                         overwrite: bool = False, show_progress: bool = True, resume: bool = False) -> SelfTrainResult:
    """self_train on validated specs (what the API's keywords and a saved config.yaml both become). Every round
    (and every epoch in it) is checkpointed beside `out`; `resume=True` continues an interrupted run."""
    out = resume_out(out, resume) or default_run_dir(spec.backbone.name, f"self-train-{spec.strategy.name}")
    with claim_out(out, overwrite, [*spec.inputs(), options.unlabeled]), \
            resumable(out, "self-train", {"run": spec.to_dict(), "self_training": options.model_dump(mode="json")},
                      resume, overwrite) as checkpoints:  # before any work
        return _self_train(spec, options, out, overwrite, show_progress, checkpoints)


def _self_train(spec: RunSpec, options: SelfTrainSpec, out: Path, overwrite: bool,
                show_progress: bool, checkpoints: Checkpoints) -> SelfTrainResult:
    plan = strategies.plan(spec.strategy.name, spec.strategy.epochs, spec.strategy.lr)
    spec = spec.model_copy(deep=True)
    spec.train.precision = resolve_precision(spec.train.precision)
    spec.headstart_version = __version__
    started = time.perf_counter()

    # 1. Labelled splits exactly as fit makes them; the unlabelled pool without its labels.
    data = load_task(spec.data, spec.train.seed)
    if not data.task.self_trains:
        raise HeadstartError(f"{spec.data.train} holds {data.task.kind} targets, and self-train works on class labels "
                             "and tag sets only so far (a pseudo-label needs a confidence to rank by); fit, "
                             "evaluate and predict take every kind")
    pool, truth, notes = _unlabelled_pool(options.unlabeled, data, spec.data)
    pristine = backbones.load(spec.backbone)
    check_modality(pristine, spec.backbone.name, spec.data.train, data.modality)
    n_groups = len(pristine.layer_groups())
    frozen = plan.init == "pretrained" and all(p.train_from is None or p.train_from >= n_groups for p in plan.phases)
    engine.progress.console.print(plan.describe(n_groups), highlight=False)
    if options.noise:
        notes.append(_noise_note(data.modality))

    # 2. The teacher learns from the labelled data alone.
    t0 = time.perf_counter()
    task = data.task
    best = _kept_round(checkpoints, 0, data, spec, show_progress) or \
        _evaluate(0, _student(pristine, data, plan, spec, 0.0, show_progress, checkpoints.child("round-0")), data, [],
                  None, spec, show_progress, t0, checkpoints)
    records, stopped = [best.record], f"ran all {options.rounds} round(s)"
    labelled_groups = task.pseudo_scores(task.evidence(data.train.labels)).argmax(1)  # the classes, for classes
    labelled_shares = np.bincount(labelled_groups, minlength=task.out_dim()) / len(data.train)
    for number in range(1, options.rounds + 1):
        t0 = time.perf_counter()
        result = _kept_round(checkpoints, number, data, spec, show_progress)  # finished before an interruption
        if result is None:
            # 3. The teacher labels the pool; only the pseudo-labels it is most sure of are kept.
            outputs = _outputs(best.model, pool.inputs, frozen, spec.train.precision, show_progress)
            teacher_task = best.model.task  # as tuned on validation (a multi-label threshold)
            scores = teacher_task.pseudo_scores(outputs)
            chosen, labels = _said_something(_select(scores, number, options, labelled_shares), outputs, teacher_task)
            if not len(chosen):
                stopped = _nothing_chosen(number, options, scores)
                break
            # 4. A fresh student from the same pretrained backbone learns from labelled + pseudo-labelled data.
            pseudo = _pseudo_examples(pool, chosen, labels)
            student_train = data.train.joined(pseudo)
            dropout = 0.0
            if options.noise:
                dropout = NOISE_DROPOUT
                if data.modality == "image":
                    student_train = student_train.joined(_augmented(student_train, spec.train.seed + number))
            student_data = replace(data, train=student_train)
            student = _student(pristine, student_data, plan, spec, dropout, show_progress,
                               checkpoints.child(f"round-{number}"))
            # 5. Evaluate; the student teaches the next round unless its validation accuracy dropped.
            known = pseudo_label_accuracy(chosen, pseudo.labels, truth)
            result = _evaluate(number, student, student_data, pseudo.labels, known, spec, show_progress, t0,
                               checkpoints)
        records.append(result.record)
        if not _better(result.record, best.record):
            stopped = (f"round {number}: validation {task.score_name} dropped below round {best.number}'s; "
                       f"kept round {best.number}")
            break
        best = result

    metrics = data.task.metrics(data.test.labels, [p.label for p in best.predictions])
    metrics.update(best_round=best.number, best_val_accuracy=best.record["val_accuracy"],
                   teacher_test_accuracy=records[0]["test_accuracy"], best_epoch=best.history.best_epoch,
                   train_seconds=round(time.perf_counter() - started, 2), n_train=best.record["n_train"],
                   n_val=len(data.val), n_pseudo=best.record["n_pseudo"])
    summary = {"rounds": records, "best_round": best.number, "stopped": stopped, "selection": options.selection,
               "class_shares": options.class_shares,
               "curriculum_step": options.curriculum_step, "threshold": options.threshold,
               "per_class_cap": options.per_class_cap, "noise": options.noise, "n_unlabeled": len(pool),
               "unlabeled_labels_known": truth is not None}
    _save(out, overwrite, spec, options, plan, data, notes + [stopped], best, metrics, summary)
    return SelfTrainResult(out, metrics, records, best.number, best.model, best.history, spec, options)


def _unlabelled_pool(source: str, data: TaskData, options: DataSpec) -> tuple[Examples, list[str] | None, list[str]]:
    """The pool without labels, its labels (only for the report; None if it has none) and notes on what was left out.
    It is read with the training data's column names and rule for bad images."""
    read = dict(on_bad_image=options.on_bad_image, columns=options.columns())
    try:
        examples = load_examples(source, labelled=True, **read)
    except HeadstartError:  # no label column or no class subfolders: a plainly unlabelled pool
        examples = load_examples(source, labelled=False, **read)
    if examples.modality != data.modality:
        raise HeadstartError(f"--unlabeled {source} holds {examples.modality}s but the training data holds "
                             f"{data.modality}s; give unlabelled {data.modality}s")
    check_words(examples, data.task, "the training data")
    # An input that is also labelled, validation or test data would leak into training or inflate the report.
    seen = {content_digest(x) for part in (data.train, data.val, data.test) for x in part.inputs}
    fresh = [i for i, x in enumerate(examples.inputs) if content_digest(x) not in seen]
    notes = [f"unlabelled: {len(fresh)} examples from {source}"]
    if len(fresh) < len(examples):
        notes.append(f"unlabelled: left out {len(examples) - len(fresh)} examples that are also in the "
                     "training, validation or test data")
    if not fresh:
        raise HeadstartError(f"--unlabeled {source} holds no example that is not already in the labelled or test "
                             "data; give other unlabelled examples")
    examples = examples.subset(fresh)
    truth = examples.labels
    return Examples(examples.inputs, examples.ids, examples.modality, None, source), truth, notes


def _noise_note(modality: str) -> str:
    extra = "; one augmented copy ('light': small shifts, rotations, rescales) of each of its training images" \
        if modality == "image" else ""
    return f"noise on: the students train with dropout {NOISE_DROPOUT} on the features before the head{extra}"


def _student(pristine, data: TaskData, plan, spec: RunSpec, dropout: float, show_progress: bool,
             checkpoints: Checkpoints) -> tuple[TransferModel, History]:
    """A new head on a fresh copy of the pretrained backbone, trained by the plan through the engine."""
    # every student starts from the same head initialisation; dropout is for training only
    return engine.train_plan(copy.deepcopy(pristine), data, plan, spec.train, spec.train.precision, show_progress,
                             feature_dropout=dropout, checkpoints=checkpoints)


def _kept_round(checkpoints: Checkpoints, number: int, data: TaskData, spec: RunSpec,
                show_progress: bool) -> _Round | None:
    """A round finished before an interruption (its model, history and record), or None."""
    saved = checkpoints.get(f"round-{number}")
    if saved is None:
        return None
    model = TransferModel.load(checkpoints.folder / f"round-{number}.model")
    predictions = predict_examples(model, data.test, spec.train.precision, show_progress)
    return _Round(number, model, History.from_state(saved["history"]), saved["record"], predictions)


@torch.no_grad()
def _outputs(model: TransferModel, inputs: list, frozen: bool, precision: str, show_progress: bool) -> np.ndarray:
    """The task's outputs (class or tag probabilities), batched; through the feature cache when the backbone stayed
    frozen."""
    if frozen:
        return model.head_outputs(engine.embed(model.backbone, inputs, EVAL_BATCH, precision, show_progress))
    with engine.progress.progress_bar("pseudo-labelling", len(inputs), show_progress) as advance:
        return model.predict_proba(inputs, EVAL_BATCH, precision, advance)


def _evaluate(number: int, trained: tuple[TransferModel, History], data: TaskData, pseudo: list, pseudo_accuracy,
              spec: RunSpec, show_progress: bool, t0: float, checkpoints: Checkpoints) -> _Round:
    """The validation score and loss of the kept epoch (to choose: what early stopping chose it by), the test score
    (to report), as one round, kept in the checkpoints. The task's score: accuracy for classes, micro-F1 for tag
    sets."""
    model, history = trained
    val = (history.best_val_accuracy, history.records[history.best_epoch].val_loss)
    predictions = predict_examples(model, data.test, spec.train.precision, show_progress)
    task = data.task
    test_score = task.metrics(data.test.labels, [p.label for p in predictions])[task.score_key]
    record = round_record(number, _counts(task, data.train, pseudo), len(pseudo), pseudo_accuracy, len(data.train),
                          val, test_score, time.perf_counter() - t0)
    engine.progress.console.print(f"round {number}: {record['n_pseudo']} pseudo-labels, validation {task.score_name} "
                                  f"{val[0]:.3f}, test {task.score_name} {test_score:.3f}", highlight=False)
    model.save(checkpoints.folder / f"round-{number}.model")  # checksummed; the record below marks it whole
    checkpoints.put(f"round-{number}", {"record": record, "history": history.state_dict()})
    checkpoints.child(f"round-{number}").clear()
    return _Round(number, model, history, record, predictions)


def _counts(task, train: Examples, pseudo_labels: list) -> dict[str, int]:
    """Pseudo-labels per class (per tag for tag sets), every training class listed, zeros included."""
    return {**dict.fromkeys(task.label_counts(train.labels), 0), **task.label_counts(pseudo_labels)}


def _class_shares(rule: str, proba: np.ndarray, labelled_shares: np.ndarray) -> np.ndarray:
    # `proba`: the task's pseudo_scores, whose argmax is the group (the class; one group for tag sets).
    """predicted: the share the teacher predicts as each class, so a round keeps the same top fraction of every
    class's predictions; labelled: the labelled data's shares; smaller: per class the smaller of the two, so
    neither an over-predicted class nor a class rarer in the pool than in the labelled data is over-filled."""
    predicted = np.bincount(proba.argmax(1), minlength=len(labelled_shares)) / len(proba)
    return {"predicted": predicted, "labelled": labelled_shares,
            "smaller": np.minimum(predicted, labelled_shares)}[rule]


def _select(proba: np.ndarray, number: int, options: SelfTrainSpec, labelled_shares: np.ndarray) -> PseudoLabels:
    """Round `number`'s pseudo-labels by the chosen rule."""
    if options.selection == "threshold":
        return select_pseudo_labels(proba, options.threshold, options.per_class_cap)
    return select_curriculum(proba, number * options.curriculum_step,
                             _class_shares(options.class_shares, proba, labelled_shares), options.threshold,
                             options.per_class_cap)


def _said_something(chosen: PseudoLabels, outputs: np.ndarray, task) -> tuple[PseudoLabels, list]:
    """The chosen rows and their labels as the teacher decodes them, without any empty tag set: a labelled row
    needs at least one tag, and a pseudo-label that names none teaches nothing."""
    labels = [d.label for d in task.decode(outputs[chosen.index], [])]
    kept = np.array([i for i, label in enumerate(labels) if label != []], dtype=np.int64)
    return (PseudoLabels(chosen.index[kept], chosen.targets[kept], chosen.confidence[kept]),
            [labels[i] for i in kept])


def _nothing_chosen(number: int, options: SelfTrainSpec, proba: np.ndarray) -> str:
    """Why a round found no pseudo-label, and what to change."""
    if options.threshold is None:  # a curriculum share too small for a tiny pool
        return (f"round {number}: {number} x --curriculum-step {options.curriculum_step:g} of {len(proba)} unlabelled "
                "examples rounds to none per class; raise --curriculum-step or give more unlabelled data")
    return (f"round {number}: no unlabelled example reached the threshold {options.threshold:g} (the teacher's "
            f"highest probability was {proba.max():.3f}); lower --threshold, or train the teacher longer "
            "(--min-steps, --epochs)")


def _better(record: dict, best: dict) -> bool:
    """A student is kept unless its validation accuracy is lower: a tie goes to the student, which saw more data.

    With a few-shot validation set (3-16 examples) a tie is the rule, and the validation loss of a student
    trained on pseudo-labels says more about its calibration than about its accuracy (measured: breaking ties
    by loss kept the teacher in most seeds, though the students were better on test).
    """
    return record["val_accuracy"] >= best["val_accuracy"]


def _pseudo_examples(pool: Examples, chosen: PseudoLabels, labels: list) -> Examples:
    picked = pool.subset(chosen.index)
    picked.labels = labels
    picked.ids = [f"unlabeled:{i}" for i in picked.ids]
    return picked


def _augmented(examples: Examples, seed: int) -> Examples:
    """One static augmented copy of each image: new inputs, so the feature cache still serves them."""
    images = augment_images(examples.inputs, "light", torch.Generator().manual_seed(seed))
    return Examples(images, [f"{i}+augmented" for i in examples.ids], examples.modality, list(examples.labels),
                    examples.source)


def _save(out, overwrite, spec, options, plan, data, notes, best: _Round, metrics, summary) -> None:
    """The run directory of the kept model, as fit writes it, plus rounds.json and the rounds plot."""
    with staged_run_dir(out, overwrite) as stage:
        write_yaml(stage / CONFIG_FILE, {
            "run": spec.to_dict(),
            "self_training": {**options.model_dump(mode="json"),
                              "noise_dropout": NOISE_DROPOUT if options.noise else 0.0,
                              "noise_augmentation": "light, one copy" if options.noise and data.modality == "image"
                              else None},
            "plan": plan.to_dict(), "notes": data.notes + notes})
        write_json(stage / METRICS_FILE, metrics)
        write_json(stage / ROUNDS_FILE, summary)
        write_jsonl(stage / HISTORY_FILE, [r.to_dict() for r in best.history.records])
        write_predictions(stage / data.task.predictions_file, best.predictions, data.task)
        best.model.save(stage / MODEL_DIR)
        title = f"{spec.backbone.name} / {plan.strategy}, self-training"
        plot_learning_curve([r.to_dict() for r in best.history.records], stage / "learning_curve.png",
                            f"{title} (round {best.number})")
        data.task.plot_test(data.test.labels, [p.label for p in best.predictions], metrics, stage, title)
        plot_rounds(summary["rounds"], best.number, stage / PLOT_FILE, title, data.task.score_name)
