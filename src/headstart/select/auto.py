"""--strategy auto: advise, then race the plausible strategies through the engine and keep the best.

    spec, race = resolve_auto(spec)           # what fit_spec does for --strategy auto
    race.winner, race.to_dict()["rungs"]

auto is not a plan. It sits above the engine (like `compare`): the advice picks at most four candidates
(the advised strategy, the cheap linear probe, the nearest alternatives, and scratch as the reference);
successive halving (Jamieson & Talwalkar, 2016) then trains every candidate with a small budget (an
eighth of its own epochs and at least 20 optimiser steps, on half of the training split when that leaves
enough per class), keeps the better half by validation accuracy, doubles the budget, and repeats until
one is left. Cheap candidates
run first, a frozen backbone's features are shared through the feature cache, and when the time budget
is spent the best so far wins. The test split is never looked at.
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import asdict, dataclass, field

import numpy as np
import torch

from .. import backbones, strategies
from .. import train as engine
from ..config import RunSpec, parse_budget
from ..data import Examples, TaskData, load_task
from ..data.splits import stratified_subset
from ..model import TransferModel
from ..precision import resolve_precision
from ._rule import SMALL_BELOW, half_freeze, recommend
from .advise import advise_examples

__all__ = ["AUTO", "AUTO_FILE", "DEFAULT_BUDGET", "Race", "candidates_for", "race", "resolve_auto", "describe_auto"]

AUTO = "auto"
AUTO_FILE = "auto.json"
DEFAULT_BUDGET = "10m"
MAX_CANDIDATES = 4
FIRST_RUNG_SHARE = 1 / 8    # of each strategy's own epochs; doubled at every rung
MIN_RUNG_PER_CLASS = 30     # a subsampled rung keeps at least this many training examples per class
# An epoch of a small data set is a handful of optimiser steps: without a floor, a fine-tune's first rung
# would be 5 steps, which ranks warm-up noise. The floor doubles with the rung, like the epochs.
FIRST_RUNG_MIN_STEPS = 20
METRIC = "best validation accuracy (ties: lower validation loss, then the cheaper strategy)"


@dataclass
class Race:
    """What auto tried and why the winner won; `to_dict()` is auto.json."""

    budget: str
    budget_seconds: float
    candidates: list[str]
    advice: dict
    rungs: list[dict] = field(default_factory=list)
    winner: str = ""
    reason: str = ""
    seconds: float = 0.0
    stopped_early: bool = False
    metric: str = METRIC

    def to_dict(self) -> dict:
        return asdict(self)

    def notes(self) -> list[str]:
        """Lines for config.yaml's notes: the run's strategy was chosen, not given."""
        return [f"strategy: --strategy auto (budget {self.budget}) raced {', '.join(self.candidates)} on the "
                f"validation split in {self.seconds:.0f} s and chose {self.winner}: {self.reason} (see {AUTO_FILE})",
                f"advice: {self.advice['quadrant']} -> {self.advice['strategy']}",
                f"fit --config reruns {self.winner} directly, without racing again"]


def candidates_for(advice_strategy: str, alternatives: list[str]) -> list[str]:
    """The advised strategy, linear-probe, the nearest alternatives, and scratch: at most MAX_CANDIDATES."""
    names = list(dict.fromkeys([advice_strategy, "linear-probe", *alternatives]))
    names = [n for n in names if n != "scratch"][:MAX_CANDIDATES - 1]
    return names + ["scratch"]  # the reference every transfer has to beat


def race(task: TaskData, spec: RunSpec, candidates: list[str], advice: dict | None = None,
         show_progress: bool = True) -> Race:
    """Successive halving of `candidates` on task.train / task.val within spec.strategy.budget."""
    budget = spec.strategy.budget or DEFAULT_BUDGET
    precision = resolve_precision(spec.train.precision)
    pristine = backbones.load(spec.backbone)
    n_groups = len(pristine.layer_groups())
    plans = {name: strategies.plan(name, spec.strategy.epochs, spec.strategy.lr) for name in candidates}
    for plan in plans.values():
        strategies.check_fits(plan, n_groups)
    alive = sorted(candidates, key=lambda n: (_cost(plans[n], n_groups), candidates.index(n)))
    result = Race(budget, parse_budget(budget), list(alive), advice or {})
    n_rungs = _rungs_needed(len(alive))
    started, latest = time.perf_counter(), {}
    for rung in range(n_rungs):
        train = _rung_data(task.train, rung, n_rungs, spec.train.seed)
        record = {"rung": rung, "n_train": len(train), "n_val": len(task.val), "results": []}
        result.rungs.append(record)
        for name in alive:
            if latest and time.perf_counter() - started >= result.budget_seconds:
                result.stopped_early = True
                break
            epochs = _rung_epochs(plans[name], rung)
            engine.progress.console.print(f"auto, rung {rung + 1}/{n_rungs}: {name} ({epochs} epochs per phase, "
                                          f"{len(train)} examples)", highlight=False)
            entry = _try(pristine, TaskData(train, task.val, task.test, task.classes, task.modality), name, epochs,
                         rung, spec, precision, show_progress)
            record["results"].append(entry)
            latest[name] = (entry["val_accuracy"], -entry["val_loss"], -alive.index(name))
        if result.stopped_early:
            break
        ranked = sorted(alive, key=lambda n: latest[n], reverse=True)
        alive = [n for n in alive if n in ranked[:_keep(len(alive))]]  # survivors stay in cheap-first order
        record["kept"] = list(alive)
    # The last rung's best; when the budget ran out, the best-scored of those still in the race.
    result.winner = max((n for n in alive if n in latest), key=lambda n: latest[n])
    result.seconds = round(time.perf_counter() - started, 2)
    result.reason = _reason(result)
    return result


def resolve_auto(spec: RunSpec, show_progress: bool = True) -> tuple[RunSpec, Race]:
    """fit's --strategy auto: advise on the training split, race the candidates, return the spec of the winner."""
    task = load_task(spec.data, spec.train.seed)
    advice = advise_examples(task.train, spec.backbone, None, resolve_precision(spec.train.precision),
                             spec.train.seed, show_progress)
    engine.progress.console.print(f"auto: {advice.reason}", highlight=False)
    result = race(task, spec, candidates_for(advice.strategy, advice.alternatives), advice.to_dict(), show_progress)
    engine.progress.console.print(f"auto chose {result.winner}: {result.reason}", highlight=False)
    resolved = spec.model_copy(deep=True)
    resolved.strategy.name, resolved.strategy.budget = result.winner, None
    return resolved, result


def describe_auto(spec: RunSpec) -> str:
    """What --strategy auto would do, from the label counts alone (no embedding, no training): fit --dry-run."""
    task = load_task(spec.data, spec.train.seed)
    n_groups = len(backbones.load(spec.backbone).layer_groups())
    per_class = float(np.median(np.unique(np.array(task.train.labels, dtype=object).astype(str),
                                          return_counts=True)[1]))
    lines = [f"strategy auto (budget {spec.strategy.budget or DEFAULT_BUDGET}): measure how far the frozen "
             f"{spec.backbone.name} features beat random ones on the {len(task.train)} training examples "
             f"({per_class:g} per class, median: {'small' if per_class < SMALL_BELOW else 'large'}), then race:"]
    for similar, words in ((True, "if similar"), (False, "if different")):
        decision = recommend(labels_per_class=per_class, similarity=1.0 if similar else 0.0, probe_pretrained=0.9,
                             probe_random=0.5, n_groups=n_groups, method="probe-vs-random")
        lines.append(f"  {words}: {', '.join(candidates_for(decision.strategy, decision.alternatives))}")
    n = MAX_CANDIDATES
    lines.append(f"  successive halving on the {len(task.val)} validation examples: {n} candidates at 1/8 of their "
                 f"epochs, the better half at 1/4, ... until one is left; then the winner is fitted fully")
    lines.append(f"  (freeze:K uses K = {half_freeze(n_groups).split(':')[1]}, the early half of {n_groups} layer groups)")
    return "\n".join(lines)


def _try(pristine, task: TaskData, name: str, epochs: int, rung: int, spec: RunSpec, precision: str,
         show_progress: bool) -> dict:
    plan = strategies.plan(name, epochs, spec.strategy.lr)
    torch.manual_seed(spec.train.seed)  # the same head initialisation for every candidate
    model = TransferModel(copy.deepcopy(pristine), task.classes)
    train_spec = spec.train.model_copy(update={"min_steps": FIRST_RUNG_MIN_STEPS * 2 ** rung})
    t0 = time.perf_counter()
    history = engine.run(model, task, plan, train_spec, precision, show_progress)
    best = history.records[history.best_epoch]
    return {"strategy": name, "epochs": epochs, "val_accuracy": round(best.val_accuracy, 4),
            "val_loss": round(best.val_loss, 4), "best_epoch": history.best_epoch,
            "seconds": round(time.perf_counter() - t0, 2)}


def _cost(plan, n_groups: int) -> float:
    """A rough order of training cost: frozen phases train on cached features, nearly free."""
    return sum(p.epochs * (1 + (n_groups - p.train_from) / n_groups) for p in plan.phases if p.train_from is not None)


def _rungs_needed(n: int) -> int:
    rungs = 0
    while n > 1:
        n, rungs = _keep(n), rungs + 1
    return max(1, rungs)


def _keep(n: int) -> int:
    return 1 if n <= 2 else math.ceil(n / 2)


def _rung_epochs(plan, rung: int) -> int:
    """An eighth of the plan's own epochs per phase at the first rung, doubled at every rung after."""
    return max(1, round(max(p.epochs for p in plan.phases) * FIRST_RUNG_SHARE * 2 ** rung))


def _rung_data(train: Examples, rung: int, n_rungs: int, seed: int) -> Examples:
    """Half the training split at each earlier rung (at least MIN_RUNG_PER_CLASS per class); all of it at the last."""
    share = 0.5 ** (n_rungs - 1 - rung)
    n_classes = len(set(train.labels))
    size = max(int(share * len(train)), MIN_RUNG_PER_CLASS * n_classes)
    return train if size >= len(train) else stratified_subset(train, size, seed)


def _reason(result: Race) -> str:
    last = [r for r in result.rungs if r["results"]][-1]
    scores = sorted(last["results"], key=lambda e: (e["val_accuracy"], -e["val_loss"]), reverse=True)
    best = next(e for e in scores if e["strategy"] == result.winner)
    words = f"{result.winner} had the best validation accuracy at rung {last['rung'] + 1} ({best['val_accuracy']:.3f}"
    others = [e for e in scores if e["strategy"] != result.winner]
    versus = ", ".join(f"{e['strategy']} {e['val_accuracy']:.3f}" for e in others)
    words += f" against {versus})" if others else ")"
    if any(e["val_accuracy"] == best["val_accuracy"] for e in others):
        words += f", the tie broken by its lower validation loss ({best['val_loss']:.3f}) or its lower cost"
    dropped = [f"{e['strategy']} ({e['val_accuracy']:.3f}) at rung {r['rung'] + 1}" for r in result.rungs
               if "kept" in r and r is not last for e in r["results"] if e["strategy"] not in r["kept"]]
    if dropped:
        words += f"; dropped on the way: {', '.join(dropped)}"
    if result.stopped_early:
        words += f"; the {result.budget} budget ran out, so this is the best so far"
    return words
