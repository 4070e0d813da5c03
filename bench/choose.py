"""Does --strategy auto choose well, and cheaply? And does `advise` point at what actually wins?

On real tasks (digits and an MNIST subset with EfficientNet-Lite0 at 32 px; Rotten Tomatoes and Brown
genre subsets with MiniLM), in the same run:

- data: per task a stratified sample of 500 labelled examples to train on (fit holds 10% of them out for
  validation) and a separate stratified test set of 1,000 (MNIST: from its official test part), so that a
  point of test accuracy is 10 examples, not one;
- hindsight: every strategy `compare` tries by default (scratch, linear-probe, freeze:K with K half
  the layer groups, full, lp-ft; the advice's freeze:K takes the early quarter, so it may be none of
  them) fitted fully by `headstart.fit` with its own default epochs, one seed (`--seed`),
  the same split; the best test accuracy is the best in hindsight;
- auto: `headstart.fit(strategy="auto")` on the same split: advise, race, and the winner trained on.

Figures: auto's test accuracy minus the best in hindsight (target: within 1 point), and the compute auto
used (this process's CPU seconds, advice + race + the winner's fit) as a share of fitting every strategy
(target <= 1/3). Both sides start from a cold feature cache. CPU seconds rather than wall seconds: the
machine is shared, and the share of other processes is reported.

    python bench/choose.py [--quick] [--budget 10m]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _common import Stopwatch, check_quiet, cold_cache, machine, print_table, write_labelled, write_results  # noqa: E402

import headstart  # noqa: E402
from headstart.compare import default_strategies  # noqa: E402
from headstart.data import load_examples  # noqa: E402
from headstart.data.splits import stratified_split, stratified_subset  # noqa: E402
from headstart.errors import HeadstartError  # noqa: E402

TASKS = [  # test=None: the test set comes from the same source as the training sample, disjoint from it
    {"task": "digits", "source": "builtin:digits", "test": None, "backbone": "efficientnet-lite0", "image_size": 32},
    {"task": "mnist", "source": "builtin:mnist", "test": "builtin:mnist:test", "backbone": "efficientnet-lite0",
     "image_size": 32},
    {"task": "rotten-tomatoes", "source": "builtin:rotten-tomatoes", "test": None, "backbone": "minilm-l6",
     "max_length": 64},
    {"task": "brown", "source": "builtin:brown", "test": None, "backbone": "minilm-l6", "max_length": 64},
]
TRAIN_SIZE, TEST_SIZE = 500, 1000


def cpu_seconds() -> float:
    t = os.times()
    return t.user + t.system


def write_split(task: dict, folder: Path, train_size: int, test_size: int, seed: int) -> tuple[str, str]:
    """A stratified training sample and a disjoint stratified test set, written as a user has them."""
    data = load_examples(task["source"])
    if task["test"] is None:
        rest, test = stratified_split(data, test_size / len(data), seed)
    else:
        rest, test = data, stratified_subset(load_examples(task["test"]), test_size, seed)
    train = stratified_subset(rest, train_size, seed)
    return write_labelled(folder, "train", train), write_labelled(folder, "test", test)


def timed_fit(folder: Path, name: str, task: dict, split: tuple[str, str], seed: int, **options) -> dict:
    keys = ("backbone", "image_size", "max_length")
    before = cpu_seconds()
    with Stopwatch() as clock:
        run = headstart.fit(*split, **{k: task[k] for k in keys if k in task}, out=folder / name, seed=seed,
                            show_progress=False, **options)
    return {"strategy": run.plan.strategy, "test_accuracy": run.metrics["accuracy"], "cpu_seconds": cpu_seconds() - before,
            "wall_seconds": clock.seconds, "other_processes_cpu": clock.others, "run_dir": run.run_dir}


def bench_task(task: dict, args) -> dict | None:
    with tempfile.TemporaryDirectory(prefix="bench-choose-") as tmp:
        folder = Path(tmp)
        try:
            split = write_split(task, folder, args.train_size, args.test_size, args.seed)
        except HeadstartError as err:  # e.g. builtin:brown not installed
            print(f"skipping {task['task']}: {err}")
            return None
        with cold_cache():
            auto = timed_fit(folder, "auto", task, split, args.seed, strategy="auto", budget=args.budget,
                             epochs=args.epochs)
        race = json.loads((auto.pop("run_dir") / "auto.json").read_text())
        advice = race["advice"]
        names = default_strategies(advice["n_groups"])
        every = {}
        with cold_cache():
            for name in names:
                every[name] = timed_fit(folder, name.replace(":", "-"), task, split, args.seed, strategy=name,
                                        epochs=args.epochs)
                every[name].pop("run_dir")
    best = max(every, key=lambda n: every[n]["test_accuracy"])
    total_cpu = sum(r["cpu_seconds"] for r in every.values())
    return {"task": dict(task, train_size=args.train_size, test_size=args.test_size), "advice": {k: advice[k] for k in ("labels_per_class", "size", "similarity", "quadrant",
                                                             "strategy", "measurements")},
            "race": {k: race[k] for k in ("candidates", "rungs", "winner", "final", "reason", "seconds", "stopped_early")},
            "auto": auto, "every": every, "best_in_hindsight": best,
            "accuracy_gap_points": 100 * (auto["test_accuracy"] - every[best]["test_accuracy"]),
            "compute_share": auto["cpu_seconds"] / total_cpu, "every_cpu_seconds": total_cpu}


def main() -> None:
    parser = argparse.ArgumentParser(description="auto against every strategy in hindsight; advice against the winner")
    parser.add_argument("--budget", default="10m", help="auto's race budget")
    parser.add_argument("--epochs", type=int, default=None, help="epochs per phase on both sides; default: each strategy's own")
    parser.add_argument("--tasks", nargs="+", default=[t["task"] for t in TASKS])
    parser.add_argument("--train-size", type=int, default=TRAIN_SIZE)
    parser.add_argument("--test-size", type=int, default=TEST_SIZE)
    parser.add_argument("--seed", type=int, default=0, help="the split's and every fit's seed")
    parser.add_argument("--quick", action="store_true", help="digits and reviews, 150 examples, 2 epochs: a smoke run")
    args = parser.parse_args()
    tasks = [dict(t) for t in TASKS if t["task"] in args.tasks]
    if args.quick:
        tasks = [t for t in tasks if t["task"] in ("digits", "rotten-tomatoes")]
        args.epochs, args.train_size, args.test_size = 2, 150, 200
    results = [r for r in (bench_task(t, args) for t in tasks) if r is not None]

    rows = [[r["task"]["task"], f"{r['auto']['strategy']}", f"{r['auto']['test_accuracy']:.3f}",
             f"{r['best_in_hindsight']} {r['every'][r['best_in_hindsight']]['test_accuracy']:.3f}",
             f"{r['accuracy_gap_points']:+.1f}", f"{r['auto']['cpu_seconds']:.0f} / {r['every_cpu_seconds']:.0f}",
             f"{r['compute_share']:.2f}"] for r in results]
    print_table("auto against every strategy fitted fully (test accuracy, one seed)",
                ["task", "auto chose", "auto", "best in hindsight", "gap (points)", "CPU s auto / all", "share"], rows)
    rows = [[r["task"]["task"], f"{r['advice']['labels_per_class']['median']:g}/class ({r['advice']['size']})",
             f"{r['advice']['similarity']:.2f} (probe {r['advice']['measurements']['probe_pretrained']:.2f} vs random "
             f"{r['advice']['measurements']['probe_random']:.2f})", f"{r['advice']['quadrant']}: {r['advice']['strategy']}",
             r["best_in_hindsight"], ", ".join(f"{n} {e['test_accuracy']:.3f}" for n, e in r["every"].items())]
            for r in results]
    print_table("advice against the actual best", ["task", "size", "similarity", "advice", "actual best", "all"], rows)
    if results:
        print(f"\nmean gap to the best in hindsight: {sum(r['accuracy_gap_points'] for r in results) / len(results):+.1f} "
              f"points (target >= -1); mean compute share: "
              f"{sum(r['compute_share'] for r in results) / len(results):.2f} (target <= 0.33)")
    check_quiet([r["auto"]["other_processes_cpu"] for r in results] +
                [e["other_processes_cpu"] for r in results for e in r["every"].values()], limit=0.5)
    write_results("choose" if args.seed == 0 else f"choose_seed{args.seed}",
                  {"args": vars(args), "machine": machine(), "results": results})


if __name__ == "__main__":
    main()
