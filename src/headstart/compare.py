"""compare: the strategies side by side on the same splits, against scratch and a classical baseline.

    summary = headstart.compare("builtin:rotten-tomatoes", backbone="minilm-l6", train_size=600,
                                strategies=["scratch", "linear-probe", "lp-ft"], seeds=3, shots=[8, 32, "all"],
                                out="runs/compare")
    summary["best"], summary["benefits"]["lp-ft"]["asymptote"]["delta_vs_scratch"]

Every strategy sees the same folds (or seeded hold-outs), the same validation split and the same
labelled subsets; a frozen backbone's features are computed once per example and shared through the
feature cache by every strategy and shot count that can use them.
"""

from __future__ import annotations

import copy
import time
import warnings
from collections import Counter
from pathlib import Path

import numpy as np

from . import __version__, backbones
from . import strategies as registry
from . import train as engine
from .baselines import BASELINE_NAME, baseline_refusal, word_floor
from .checkpoints import resumable
from .config import RunSpec, TrainSpec
from .data import Examples, TaskData, load_examples
from .data.splits import check_classes, has_classes, evaluation_splits, few_shot, stratified_split, train_subset
from .errors import HeadstartError
from .tasks import TASKS, Task
from .evaluate.benefits import benefits, paired_difference
from .evaluate.report import write_report
from .model import check_modality
from .precision import resolve_precision
from .runs import claim_out, staged_run_dir, write_json, write_yaml

__all__ = ["compare", "DEFAULT_STRATEGIES", "default_strategies", "parse_shots"]

DEFAULT_STRATEGIES = ("scratch", "linear-probe", "freeze:{half}", "full", "lp-ft")
ALL = "all"
MIN_STEPS = 50  # few-shot subsets train at least this many steps, so that shots compare learning, not luck


def parse_shots(text: str | list | None) -> list:
    """'8,32,all' -> [8, 32, 'all']; 'all' is always included (it gives the headline numbers)."""
    items = text.split(",") if isinstance(text, str) else list(text or [])
    shots = []
    for item in items:
        item = str(item).strip()
        if item == ALL:
            continue
        if not item.isdigit() or int(item) < 1:
            raise HeadstartError(f"--shots: '{item}' is not a positive number of labels per class (or 'all')")
        shots.append(int(item))
    return sorted(set(shots)) + [ALL]


def compare(train: str, test: str | None = None, *, backbone: str, strategies: list[str] | None = None,
            folds: int | None = None, seeds: int | None = None, shots=None, epochs: int | None = None,
            train_size: int | None = None, image_size: int | None = None, max_length: int = 128, long: str = "truncate",
            weights: str | None = None, batch_size: int = 32, precision: str | None = None, task: str | None = None,
            out: str | Path = "runs/compare", overwrite: bool = False, show_progress: bool = True,
            command: str | None = None, resume: bool = False, shot_steps: int = MIN_STEPS,
            text_column: str | None = None, image_column: str | None = None, label_column: str | None = None) -> dict:
    """Run every strategy and the baseline on the same splits; write summary.json and report.html. Every finished
    fold x shot count x strategy is checkpointed beside `out`; `resume=True` continues an interrupted comparison."""
    out = Path(out)
    given = {"train": train, "test": test, "backbone": backbone, "strategies": strategies, "folds": folds,
             "seeds": seeds, "shots": shots, "epochs": epochs, "train_size": train_size, "image_size": image_size,
             "max_length": max_length, "long": long,
             "weights": weights, "batch_size": batch_size, "precision": precision,
             "task": task, "shot_steps": shot_steps, "text_column": text_column, "image_column": image_column,
             "label_column": label_column}
    options = RunSpec.build({"data": {"train": train, "test": test, "train_size": train_size, "task": task,  # as fit
                                      "text_column": text_column, "image_column": image_column,
                                      "label_column": label_column},
                             "backbone": {"name": backbone, "weights": weights, "image_size": image_size,
                                          "max_length": max_length, "long": long},
                             "strategy": {"epochs": epochs}, "train": {"batch_size": batch_size,
                                                                      "precision": precision, "min_steps": shot_steps}},
                            source="compare options")
    if folds is not None and seeds is not None:
        raise HeadstartError("give --folds K or --seeds N, not both")
    if seeds is not None and seeds < 1:
        raise HeadstartError(f"--seeds {seeds}: need at least 1 seeded split (3 or more for a firm verdict)")
    with claim_out(out, overwrite, options.inputs()), \
            resumable(out, "compare", given, resume, overwrite) as checkpoints:  # before any work
        seeds = 3 if folds is None and seeds is None else seeds
        shot_list = parse_shots(shots)
        precision = resolve_precision(precision)
        pristine = backbones.load(options.backbone)
        names = _strategy_names(strategies, len(pristine.layer_groups()))
        plans = {name: registry.plan(name, epochs) for name in names}

        examples = load_examples(train, kind=task, columns=options.data.columns())
        if train_size is not None:
            examples = train_subset(examples, train_size, 0)
        check_classes(examples, 3, "to split folds and validation")
        check_modality(pristine, backbone, train, examples.modality)
        external = load_examples(test, kind=examples.kind, columns=options.data.columns()) if test else None
        kind = TASKS.get(examples.kind).from_labels(examples.labels)
        if external is not None:
            kind.check_known(external.labels, test, "the training data")
        if shot_list != [ALL] and not has_classes(examples):
            raise HeadstartError(f"--shots {shots}: labelled subsets are drawn per class, and {train} holds "
                                 f"{examples.kind} targets; leave --shots out (all labels)")
        splits = [(*stratified_split(fold_train, 0.1, fold + 1), held_out)
                  for fold, (fold_train, held_out) in enumerate(evaluation_splits(examples, folds, seeds))]
        shot_list = _distinct_shots(shot_list, [fit_part for fit_part, _, _ in splits])
        for name in names:  # a plan that cannot train on this data is refused before any fold trains
            engine.check_plan(plans[name], pristine, TaskData(*splits[0], kind, examples.modality), options.train)

        runs: dict[str, dict] = {}  # name -> shots -> list of per-fold results
        started = time.perf_counter()
        for fold, (fit_part, val, held_out) in enumerate(splits):
            for k in shot_list:
                part = fit_part if k == ALL else few_shot(fit_part, k, seed=fold)
                task = TaskData(part, val, held_out, kind, examples.modality)
                for name in names:
                    unit = f"fold{fold}-{k}-{name}"
                    result = checkpoints.get(unit)  # finished before an interruption
                    if result is None:
                        engine.progress.console.print(f"fold {fold + 1}/{len(splits)}, {k} per class: {name}",
                                                      highlight=False)
                        result = _run_strategy(pristine, task, plans[name], precision, options.train, fold, external,
                                               show_progress, checkpoints.child(unit))
                        checkpoints.put(unit, result)
                        checkpoints.child(unit).clear()
                    runs.setdefault(name, {}).setdefault(k, []).append(result)
                runs.setdefault(BASELINE_NAME, {}).setdefault(k, []).append(
                    _run_baseline(task, external, fold, options.train))

        summary = _summarise(runs, shot_list, kind)
        summary.update({
            "headstart_version": __version__,
            "command": command,
            "config": {"train": train, "test": test, "backbone": backbone, "strategies": names, "folds": folds,
                       "seeds": seeds, "shots": shot_list, "epochs": epochs, "train_size": train_size,
                       "image_size": image_size, "max_length": max_length, "long": long, "batch_size": batch_size,
                       "precision": precision, "shot_steps": shot_steps, "text_column": text_column,
                       "image_column": image_column, "label_column": label_column,
                       "plans": {n: p.to_dict() for n, p in plans.items()}},
            "task": {"modality": examples.modality, **kind.to_dict(), "n": len(examples),
                     "splits": f"{folds}-fold stratified cross-validation" if folds else
                               f"{seeds} seeded stratified 80/20 hold-outs",
                     "validation": "10% of each split's training part, the same for every strategy and shot count"},
            "seconds": time.perf_counter() - started,
        })
        with staged_run_dir(out, overwrite) as stage:
            write_json(stage / "summary.json", summary)
            write_yaml(stage / "config.yaml", {"command": command, **summary["config"]})
            write_report(summary, stage)
        return summary


def default_strategies(n_groups: int) -> list[str]:
    """compare's five for a backbone of n_groups layer groups: freeze:K takes the half, the middle of the range."""
    return [n.format(half=n_groups // 2) for n in DEFAULT_STRATEGIES]


def _strategy_names(requested, n_groups: int) -> list[str]:
    names = [n.strip() for n in requested] if requested else default_strategies(n_groups)
    if "scratch" not in names:
        names = ["scratch"] + names  # every benefit is measured against scratch on the same folds
    if BASELINE_NAME in names:
        raise HeadstartError(f"compare runs the {BASELINE_NAME} on every split already; drop it from --strategies")
    for name in names:
        registry.plan(name)  # unknown names fail here, before any training
    return names


def _distinct_shots(shot_list: list, fit_parts: list[Examples]) -> list:
    """The shot counts that differ from all labels: a count no class of any fold reaches draws every label, the
    same run as 'all' under another name, so it is dropped with a warning."""
    if shot_list == [ALL]:
        return shot_list  # (labels that are not classes have no other counts: checked before)
    largest = max(max(Counter(part.labels).values()) for part in fit_parts)
    same = [k for k in shot_list if k != ALL and k >= largest]
    if same:
        warnings.warn(f"--shots {', '.join(map(str, same))}: no class has more than {largest} training examples in a "
                      f"fold, so {'these are' if len(same) > 1 else 'it is'} the same as 'all'; dropped", stacklevel=2)
    return [k for k in shot_list if k not in same]


def _run_strategy(pristine, task: TaskData, plan, precision, train: TrainSpec, fold, external, show_progress,
                  checkpoints) -> dict:
    t0 = time.perf_counter()
    model, history = engine.train_plan(copy.deepcopy(pristine), task, plan,
                                       train.model_copy(update={"seed": fold}), precision,
                                       show_progress, checkpoints=checkpoints)
    result = _test(model, task.test, precision, show_progress, plan)
    if external is not None:
        result["external"] = _test(model, external, precision, show_progress, plan)
    result.update(curve=history.learning_curve(), seconds=time.perf_counter() - t0)
    return result


def _test(model, examples: Examples, precision, show_progress, plan=None) -> dict:
    if plan is not None and all(p.train_from is None for p in plan.phases):  # a frozen backbone: features cached
        outputs = model.head_outputs(engine.embed(model.backbone, examples.inputs, 64, precision, show_progress))
    else:
        outputs = model.predict_proba(examples.inputs, 64, precision)
    return model.task.metrics(examples.labels, [d.label for d in model.task.decode(outputs, examples.inputs)])


def _run_baseline(task: TaskData, external, fold, train: TrainSpec) -> dict:
    """The baseline row: the very model `fit --strategy baseline` trains (each word's most frequent tag for a tag
    per word, which no run serves)."""
    t0 = time.perf_counter()
    if baseline_refusal(task.task) is None:
        model, _ = engine.train_plan(None, task, registry.plan(BASELINE_NAME), train.model_copy(update={"seed": fold}),
                                     "fp32", show_progress=False)
        predict = lambda examples: _test(model, examples, "fp32", False)  # noqa: E731
    else:
        predict = lambda examples: task.task.metrics(  # noqa: E731
            examples.labels, word_floor(task.train, examples, task.task))
    result = predict(task.test)
    if external is not None:
        result["external"] = predict(external)
    result.update(curve=None, seconds=time.perf_counter() - t0)
    return result


def _mean_curve(curves: list[list[float]]) -> list[float]:
    longest = max(len(c) for c in curves)
    return [float(np.mean([c[min(i, len(c) - 1)] for c in curves])) for i in range(longest)]


def _summarise(runs: dict, shot_list: list, task: Task) -> dict:
    """Means, spreads and paired tests of the task's score (accuracy for classes: the keys say which)."""
    key, second = task.score_key, task.second_key
    table = {}
    for name, by_shots in runs.items():
        folds = by_shots[ALL]
        main, other = [r[key] for r in folds], [r[second] for r in folds]
        entry = {
            f"{key}_mean": float(np.mean(main)), f"{key}_std": float(np.std(main)),
            f"{second}_mean": float(np.mean(other)), f"{second}_std": float(np.std(other)),
            f"{key}_per_fold": main,
            "learning_curve": _mean_curve([r["curve"] for r in folds]) if folds[0]["curve"] else None,
            "seconds": float(np.mean([r["seconds"] for r in folds])),
            "shots": {str(k): {f"{key}_mean": float(np.mean([r[key] for r in by_shots[k]])),
                               f"{key}_std": float(np.std([r[key] for r in by_shots[k]])),
                               f"{second}_mean": float(np.mean([r[second] for r in by_shots[k]]))}
                      for k in shot_list},
        }
        if "confusion_matrix" in folds[0]:
            entry["confusion_matrix"] = np.sum([r["confusion_matrix"] for r in folds], axis=0).tolist()
        if "external" in folds[0]:
            ext = [r["external"][key] for r in folds]
            entry[f"test_{key}_mean"], entry[f"test_{key}_std"] = float(np.mean(ext)), float(np.std(ext))
        table[name] = entry
    scratch_all = table["scratch"][f"{key}_mean"]
    for name, entry in table.items():
        for k in shot_list:  # each shot count against scratch with the same labels, split by split
            duel = paired_difference([r[key] for r in runs[name][k]], [r[key] for r in runs["scratch"][k]])
            entry["shots"][str(k)].update(delta_vs_scratch=duel["delta_vs_scratch"], significant=duel["significant"],
                                          p_value=duel["p_value"])
        enough = [k for k in shot_list if k != ALL and entry["shots"][str(k)][f"{key}_mean"] >= scratch_all]
        entry["labels_per_class_to_match_scratch"] = enough[0] if enough else None
    scratch = runs["scratch"][ALL]
    gains = {name: benefits([r["curve"] for r in by_shots[ALL]], [r[key] for r in by_shots[ALL]],
                            [r["curve"] for r in scratch], [r[key] for r in scratch])
             for name, by_shots in runs.items() if name not in ("scratch", BASELINE_NAME)}
    best = max(table, key=lambda n: (table[n][f"{key}_mean"], table[n][f"{second}_mean"]))
    score = {"key": key, "name": task.score_name, "second": second, "second_name": task.second_name}
    return {"strategies": table, "benefits": gains, "best": best, "score": score,
            "recommendation": _recommend(table, runs, best, score),
            "noise_test": "two-sided paired t-test over folds, p < 0.05; 95% t-interval of the paired difference",
            "classes": runs["scratch"][ALL][0].get("labels")}


def _recommend(table: dict, runs: dict, best: str, score: dict) -> str:
    key = score["key"]
    per_fold = lambda name: [r[key] for r in runs[name][ALL]]  # noqa: E731
    ranked = sorted(table, key=lambda n: -table[n][f"{key}_mean"])
    runner = ranked[1]
    duel = paired_difference(per_fold(best), per_fold(runner))
    lead = 100 * duel["delta_vs_scratch"]
    clear = "clearly (beyond the fold-to-fold noise)" if duel["significant"] else "but within the fold-to-fold noise"
    words = [f"Use {best}: it has the best mean {score['name']} ({table[best][f'{key}_mean']:.3f}), {lead:.1f} "
             f"points ahead of {runner}, {clear}."]
    if best == BASELINE_NAME and duel["significant"]:
        words.append("The classical baseline beats every way of reusing the pretrained model on this data: the "
                     "transfer did not pay off here.")
    elif best == BASELINE_NAME:
        words.append(f"The classical baseline is as good as the best reuse of the pretrained model ({runner}): "
                     "the transfer bought nothing measurable here.")
    elif best == "scratch":
        words.append("Training from scratch wins: the pretrained features do not suit this data.")
    n_splits = len(runs[best][ALL])
    if n_splits < 3:
        words.append(f"With only {n_splits} split(s) the noise estimate is weak: use --folds 5 or --seeds 5 "
                     "for a firmer verdict.")
    elif not duel["significant"]:
        cheapest = min((n for n in ranked if paired_difference(per_fold(n), per_fold(best))["significant"] is False),
                       key=lambda n: table[n]["seconds"])
        if cheapest != best:
            words.append(f"{cheapest} is within the noise of {best} and the cheapest "
                         f"({table[cheapest]['seconds']:.1f} s against {table[best]['seconds']:.1f} s per fold).")
    return " ".join(words)
