"""--strategy auto: advise, then race the plausible strategies through the engine and keep the best.

    spec, race, (model, history) = resolve_auto(spec, task)   # what fit_spec does for --strategy auto
    race.winner, race.to_dict()["rungs"]

auto is not a plan. It sits above the engine (like `compare`): the advice picks at most three candidates
(the advised strategy, the cheap linear probe, and as many backbone-training challengers, LP-FT first, as
the compute affords: two beside a linear probe, one beside freeze:K, none beside full or scratch).
Successive halving (Jamieson & Talwalkar, 2016) with paused training, as in Hyperband and ASHA: every
candidate trains the first third of its own plan, the best third of them (by validation accuracy) go on, and
the last one left trains to the end of its plan. The advice is the prior: a few-shot validation split is
small (50 examples: one is 2 points), so the advised strategy keeps the lead unless a challenger is right
significantly more often where the two disagree (McNemar's exact test, one-sided, p < 0.05; Dietterich,
1998). The winner's model is the run's model: nothing is trained twice, so the race costs what the losers'
first thirds cost. Epochs on cached frozen features count as free when a plan also trains the backbone, so a
rung of lp-ft is its probe plus a third of its fine-tune. Each candidate keeps its own random streams while
paused, so `fit --config` with the winner reproduces auto's model (exactly in fp32; in bf16 up to rounding,
see the README). When the time budget is spent, the leader so far wins. The test split is never looked at.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field

import numpy as np

from .. import backbones, strategies
from .. import train as engine
from ..baselines import BASELINE_NAME, baseline_refusal
from ..checkpoints import Checkpoints, capture_random, restore_random
from ..config import RunSpec, parse_budget
from ..data import TaskData, load_task
from ..model import TransferModel
from ..precision import resolve_precision
from ..strategies import Plan
from ..train import History
from ._rule import PROBE, SMALL_BELOW, early_freeze, recommend
from .advise import advise_examples, text_pairs

__all__ = ["AUTO", "AUTO_FILE", "DEFAULT_BUDGET", "Race", "candidates_for", "race_candidates", "mcnemar_p", "race",
           "resolve_auto", "describe_auto"]

AUTO = "auto"
AUTO_FILE = "auto.json"
DEFAULT_BUDGET = "10m"
MAX_CANDIDATES = 3
HALVING = 3   # keep the best third at every rung, and a rung trains a third of what the next one does (eta = 3)
# Backbone-training challengers auto can race beside an advised plan that trains none / some / all of the
# backbone and still spend at most about a third of what fitting every strategy costs (see candidates_for).
BACKBONE_CHALLENGERS = {"none": 2, "some": 1, "all": 0}
RACE_STATE = "race"  # the race so far, in its checkpoints
PRIOR_ALPHA = 0.05  # a challenger displaces the advised strategy only at this significance
METRIC = ("best validation accuracy (ties: lower validation loss, then the cheaper strategy); the advised strategy "
          f"leads unless a challenger beats it on McNemar's exact one-sided test at p < {PRIOR_ALPHA}")


@dataclass
class Race:
    """What auto tried and why the winner won; `to_dict()` is auto.json."""

    budget: str
    budget_seconds: float
    candidates: list[str]
    advice: dict
    rungs: list[dict] = field(default_factory=list)
    winner: str = ""
    final: dict = field(default_factory=dict)   # the winner at the end of its plan
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
    """The advised strategy, then the linear probe (PROBE), lp-ft and the nearest alternatives, as far as the
    compute affords.

    The linear probe trains on cached features, nearly free: it is always raced, the safety net against a
    fine-tune gone wrong. A challenger that trains backbone weights costs a third of its fine-tune at the first
    rung, so how many auto can afford depends on what the advised plan trains: two when it trains none
    (linear-probe), one when it trains some (freeze:K), none when it trains them all (full, scratch). On the
    benchmark's text tasks (choose seeds 2, 3) `full` alone took 0.21-0.30 of the compute of fitting every
    strategy, and a third of lp-ft beside it took auto to 0.38-0.39, past the third auto promises. lp-ft comes
    first among the challengers: it starts from the probe, and rarely loses to fine-tuning from a random head
    (Kumar et al., 2022)."""
    affordable = BACKBONE_CHALLENGERS[_trains(advice_strategy)]
    chosen = [advice_strategy]
    for name in dict.fromkeys([PROBE, "lp-ft", *alternatives]):
        if name in chosen or len(chosen) == MAX_CANDIDATES:
            continue
        if _trains(name) != "none":
            if affordable == 0:
                continue
            affordable -= 1
        chosen.append(name)
    return chosen


def race_candidates(advice_strategy: str, alternatives: list[str], task: TaskData) -> list[str]:
    """candidates_for, and the classical baseline wherever it can serve the task: it costs seconds (TF-IDF or
    pixels and a logistic regression), so it is raced beside the others without taking a place or adding a rung,
    and wins when it is best on validation (as any challenger, significantly so to displace the advice)."""
    chosen = candidates_for(advice_strategy, alternatives)
    return chosen + ([BASELINE_NAME] if baseline_refusal(task.task) is None and BASELINE_NAME not in chosen else [])


def _trains(name: str) -> str:
    """Which backbone weights a strategy's plan trains at most: none, some (freeze:K) or all."""
    starts = [p.train_from for p in strategies.plan(name).phases if p.train_from is not None]
    return "none" if not starts else "all" if min(starts) == 0 else "some"


class _Entrant:
    """One candidate's training, paused between rungs: its own model, engine steps and random streams. With
    checkpoints, its engine checkpoints every epoch and a resumed race picks it up where its last one left off."""

    def __init__(self, name: str, plan: Plan, task: TaskData, spec: RunSpec, precision: str, show_progress: bool,
                 checkpoints: Checkpoints | None = None):
        self.name, self.plan = name, plan
        self.model, self.steps = engine.plan_steps(spec.backbone, task, plan, spec.train, precision, show_progress,
                                                   checkpoints)
        self.random = capture_random()
        # A rung's budget counts the epochs that train backbone weights; on cached features they are nearly free.
        trains = [p.train_from is not None for p in plan.phases]
        self.weights = [1.0 if t or not any(trains) else 0.0 for t in trains]
        self.total = sum(w * p.epochs for w, p in zip(self.weights, plan.phases))
        self.done, self.seconds, self.finished = 0.0, 0.0, False
        self.history = History()
        saved = checkpoints.latest() if checkpoints is not None else None
        if saved is not None:  # the engine resumes there at its next step; count what it had done
            self.history = History.from_state(saved["history"])
            weight = {p.name: w for p, w in zip(plan.phases, self.weights)}
            self.done = sum(weight[r.phase] for r in self.history.records[1:])

    def advance_to(self, share: float) -> dict:
        """Train on until `share` of the plan's (weighted) epochs are done, or the plan ends; the score so far."""
        t0 = time.perf_counter()
        restore_random(self.random)
        target = self.total if share >= 1 else max(1, round(share * self.total))  # whole epochs, at least one
        # To the end: through the engine's last step too, which restores the best weights and tunes the task.
        while not self.finished and (share >= 1 or self.done < target):
            phase, self.history = next(self.steps)
            self.finished = phase == len(self.plan.phases)  # the engine's last step: best weights restored
            self.done += 0.0 if self.finished else self.weights[phase]
        self.random = capture_random()
        self.seconds += time.perf_counter() - t0
        self.history.seconds = self.seconds
        best = self.history.records[self.history.best_epoch]
        return {"strategy": self.name, "share": 1.0 if self.finished else round(self.done / self.total, 3),
                "epochs": len(self.history.records) - 1, "val_accuracy": round(best.val_accuracy, 4),
                "val_loss": round(best.val_loss, 4), "best_epoch": self.history.best_epoch,
                "seconds": round(self.seconds, 2)}

    def drop(self) -> None:
        self.steps.close()
        del self.model


def race(task: TaskData, spec: RunSpec, candidates: list[str], advice: dict | None = None,
         show_progress: bool = True, checkpoints: Checkpoints | None = None) -> tuple[Race, TransferModel, History]:
    """Successive halving of `candidates` on task.train / task.val; returns the race and the winner trained fully.
    With checkpoints, the race is kept after every candidate's turn (and each candidate every epoch), and a race
    that finds them goes on from there: the rungs already run are not run again."""
    budget = spec.strategy.budget or DEFAULT_BUDGET
    precision = resolve_precision(spec.train.precision)
    plans = {name: strategies.plan(name, spec.strategy.epochs, spec.strategy.lr) for name in candidates}
    saved = checkpoints.get(RACE_STATE) if checkpoints is not None else None
    # Candidates dropped before an interruption are not built again.
    entrants = {name: _Entrant(name, plans[name], task, spec, precision, show_progress,
                               checkpoints.child(name) if checkpoints is not None else None)
                for name in (saved["alive"] if saved else candidates)}
    n_groups = max(len(e.model.backbone.layer_groups()) for e in entrants.values())  # the baseline has none
    alive = sorted(candidates, key=lambda n: (_cost(plans[n], n_groups), candidates.index(n)))
    result = Race(budget, parse_budget(budget), list(alive), advice or {})
    latest, elapsed = {}, 0.0
    if saved is not None:  # the race so far
        result.rungs, result.stopped_early, alive, elapsed = saved["rungs"], saved["stopped_early"], \
            saved["alive"], saved["elapsed"]
        latest = {name: tuple(score) for name, score in saved["latest"].items()}
        for name, entrant in entrants.items():
            # A plan without epochs (linear-probe-cv's one fit) writes no checkpoint: it is fitted again, seconds.
            reached = [r["share"] for rung in result.rungs for r in rung["results"] if r["strategy"] == name]
            if reached and entrant.done == 0:
                entrant.advance_to(reached[-1])
            entrant.seconds = saved["seconds"][name]
    n_rungs = _rungs_needed(_placed(result.candidates))  # the baseline adds no rung
    advised = (advice or {}).get("strategy")
    started = time.perf_counter() - elapsed

    def keep_race() -> None:
        if checkpoints is not None:
            checkpoints.put(RACE_STATE, {"rungs": result.rungs, "stopped_early": result.stopped_early, "alive": alive,
                                         "latest": latest, "elapsed": time.perf_counter() - started,
                                         "seconds": {n: e.seconds for n, e in entrants.items()}})

    for rung in range(n_rungs):
        if result.stopped_early:
            break
        if rung < len(result.rungs) and "kept" in result.rungs[rung]:
            continue  # run and ranked before the interruption
        share = HALVING ** -(n_rungs - rung)
        if rung == len(result.rungs):
            result.rungs.append({"rung": rung, "share": round(share, 4), "results": []})
        record = result.rungs[rung]
        for name in alive:
            if any(e["strategy"] == name for e in record["results"]):
                continue  # its turn at this rung was over before the interruption
            if latest and time.perf_counter() - started >= result.budget_seconds:
                result.stopped_early = True
                break
            engine.progress.console.print(f"auto, rung {rung + 1}/{n_rungs}: {name} to {share:.0%} of its training",
                                          highlight=False)
            entry = entrants[name].advance_to(share)
            record["results"].append(entry)
            latest[name] = (entry["val_accuracy"], -entry["val_loss"], -alive.index(name))
            keep_race()
        if result.stopped_early:
            break
        ranked = _rank(alive, latest, entrants, advised, record)
        alive = [n for n in alive if n in ranked[:_keep(_placed(alive))]]  # survivors stay in cheap-first order
        record["kept"] = list(alive)
        keep_race()
    # The last rung's leader; when the budget ran out, the leader among those scored so far.
    result.winner = _rank([n for n in alive if n in latest], latest, entrants, advised, result.rungs[-1])[0]
    for name, entrant in entrants.items():
        if name != result.winner:
            entrant.drop()
    winner = entrants[result.winner]
    engine.progress.console.print(f"auto: {result.winner} trains to the end of its plan", highlight=False)
    result.final = winner.advance_to(1.0)
    result.seconds = round(time.perf_counter() - started, 2)
    result.reason = _reason(result)
    return result, winner.model, winner.history


def resolve_auto(spec: RunSpec, task: TaskData, show_progress: bool = True, checkpoints: Checkpoints | None = None
                 ) -> tuple[RunSpec, Race, tuple[TransferModel, History]]:
    """fit's --strategy auto on the task fit loaded: advise on its training split, race the candidates; the
    winner's spec, the race, and the winner's model and history, trained to the end of its plan."""
    advice = advise_examples(task.train, spec.backbone, None, resolve_precision(spec.train.precision),
                             spec.train.seed, show_progress)
    engine.progress.console.print(f"auto: {advice.reason}", highlight=False)
    result, model, history = race(task, spec, race_candidates(advice.strategy, advice.alternatives, task),
                                  advice.to_dict(), show_progress, checkpoints)
    engine.progress.console.print(f"auto chose {result.winner}: {result.reason}", highlight=False)
    resolved = spec.model_copy(deep=True)
    resolved.strategy.name, resolved.strategy.budget = result.winner, None
    return resolved, result, (model, history)


def describe_auto(spec: RunSpec) -> str:
    """What --strategy auto would do, from the label counts alone (no embedding, no training): fit --dry-run."""
    task = load_task(spec.data, spec.train.seed)
    n_groups = len(backbones.load(spec.backbone).layer_groups())
    per_class = float(np.median(list(task.task.label_counts(task.train.labels).values())))
    lines = [f"strategy auto (budget {spec.strategy.budget or DEFAULT_BUDGET}): measure how far the frozen "
             f"{spec.backbone.name} features beat random ones on the {len(task.train)} training examples "
             f"({per_class:g} per class, median: {'small' if per_class < SMALL_BELOW else 'large'}), then race:"]
    cases = [(1.0, None, "if similar"), (0.0, None, "if different")]
    if baseline_refusal(task.task) is None:
        cases.append((0.0, 1.0, "if the classical features separate the classes better (TF-IDF or pixels)"))
    said = []
    for similarity, classical, words in cases:
        decision = recommend(labels_per_class=per_class, similarity=similarity, probe_pretrained=0.9,
                             probe_random=0.5, n_groups=n_groups, method="probe-vs-random",
                             text_pairs=text_pairs(task.modality, task.task), probe_classical=classical)
        raced = ", ".join(race_candidates(decision.strategy, decision.alternatives, task))
        if classical is None or raced not in said:  # the classical case changes nothing for large data or texts
            lines.append(f"  {words}: {raced}")
            said.append(raced)
    lines.append(f"  successive halving on the {len(task.val)} validation examples: every candidate trains the first "
                 f"third of its plan, the best by validation accuracy trains on to the end (no refit); the advised "
                 f"strategy (the first) keeps the lead unless another beats it significantly "
                 f"(McNemar p < {PRIOR_ALPHA})")
    k = early_freeze(n_groups).split(":")[1]
    lines.append(f"  (freeze:K uses K = {k}, the early quarter of {n_groups} layer groups)")
    return "\n".join(lines)


def _cost(plan, n_groups: int) -> float:
    """A rough order of training cost: frozen phases train on cached features, nearly free."""
    return sum(p.epochs * (1 + (n_groups - p.train_from) / n_groups) for p in plan.phases if p.train_from is not None)


def _rank(names: list[str], latest: dict, entrants: dict, advised: str | None, record: dict) -> list[str]:
    """Best first by validation score, except that the advised strategy leads unless a challenger scored above it
    is significantly better on the same validation examples; the test is written into the rung's record."""
    ranked = sorted(names, key=lambda n: latest[n], reverse=True)
    if advised not in ranked or ranked[0] == advised or len(ranked) < 2:
        return ranked
    mine = entrants[advised].history.best_val_correct
    tests = {}
    for name in ranked[:ranked.index(advised)]:
        theirs = entrants[name].history.best_val_correct
        # Per validation row: right or wrong (a class, a word's tag, a tag set), or minus the squared error (a
        # number). Where the two differ, who did better: McNemar's test for right / wrong, the sign test otherwise.
        wins, losses = int((theirs > mine).sum()), int((mine > theirs).sum())
        tests[name] = {"right_where_advised_wrong": wins, "wrong_where_advised_right": losses,
                       "p": round(mcnemar_p(wins, losses), 4)}
    leader = next((n for n in ranked if n in tests and tests[n]["p"] < PRIOR_ALPHA), advised)
    record["prior"] = {"advised": advised, "alpha": PRIOR_ALPHA, "challengers": tests, "leader": leader}
    return [leader] + [n for n in ranked if n != leader]


def mcnemar_p(wins: int, losses: int) -> float:
    """One-sided exact McNemar test: the chance of `wins` or more of the wins + losses disagreements going the
    challenger's way if both were equally good (a sign test on the examples where they disagree)."""
    n = wins + losses
    return sum(math.comb(n, k) for k in range(wins, n + 1)) / 2 ** n


def _placed(names: list[str]) -> int:
    """How many of the candidates count for rungs and survivor places: all but the baseline, which costs seconds."""
    return len([n for n in names if n != BASELINE_NAME])


def _rungs_needed(n: int) -> int:
    rungs = 0
    while n > 1:
        n, rungs = _keep(n), rungs + 1
    return max(1, rungs)


def _keep(n: int) -> int:
    return max(1, math.ceil(n / HALVING))


def _reason(result: Race) -> str:
    last = [r for r in result.rungs if r["results"]][-1]
    scores = sorted(last["results"], key=lambda e: (e["val_accuracy"], -e["val_loss"]), reverse=True)
    best = next(e for e in scores if e["strategy"] == result.winner)
    others = [e for e in scores if e["strategy"] != result.winner]
    versus = ", ".join(f"{e['strategy']} {e['val_accuracy']:.3f}" for e in others)
    prior = last.get("prior")
    rung, score = last["rung"] + 1, f"{best['val_accuracy']:.3f}"
    if prior is None:
        words = f"{result.winner} had the best validation accuracy at rung {rung} ({score}"
        words += f" against {versus})" if others else ")"
        if any(e["val_accuracy"] == best["val_accuracy"] for e in others):
            words += f", the tie broken by its lower validation loss ({best['val_loss']:.3f}) or its lower cost"
    elif prior["leader"] == prior["advised"]:
        words = (f"{result.winner}, the advised strategy, kept the lead at rung {rung} ({score} against {versus}): "
                 f"no higher score was a significant lead ({_tests(prior)})")
    else:
        words = (f"{result.winner} beat the advised {prior['advised']} significantly at rung {rung} "
                 f"({score} against {versus}; {_tests(prior)})")
    dropped = [f"{e['strategy']} ({e['val_accuracy']:.3f}) at rung {r['rung'] + 1}" for r in result.rungs
               if "kept" in r and r is not last for e in r["results"] if e["strategy"] not in r["kept"]]
    if dropped:
        words += f"; dropped on the way: {', '.join(dropped)}"
    if result.stopped_early:
        words += f"; the {result.budget} budget ran out, so this is the best so far"
    if result.final:
        words += (f"; trained on to the end of its plan, it reached {result.final['val_accuracy']:.3f} "
                  f"validation accuracy")
    return words


def _tests(prior: dict) -> str:
    return "; ".join(f"{name} right on {t['right_where_advised_wrong']} example(s) where {prior['advised']} was wrong "
                     f"and wrong on {t['wrong_where_advised_right']} where it was right, McNemar p = {t['p']:.3f}"
                     for name, t in prior["challengers"].items())
