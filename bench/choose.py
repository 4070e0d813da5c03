"""Does --strategy auto choose well, and cheaply? And does `advise` point at what actually wins?

On real tasks (digits and an MNIST subset with EfficientNet-Lite0 at 32 px; Rotten Tomatoes and Brown
genre subsets with MiniLM), in the same run:

- hindsight: every strategy `compare` tries by default (scratch, linear-probe, freeze:K with K half
  the layer groups, full, lp-ft) fitted fully by `headstart.fit`, one seed, the same split (fit's
  stratified 20% test hold-out and 10% validation, seed 0); the best test accuracy is the best in hindsight;
- auto: `headstart.fit(strategy="auto")` on the same split: advise, race, fit the winner.

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
from _common import Stopwatch, check_quiet, cold_cache, machine, print_table, write_results  # noqa: E402

import headstart  # noqa: E402
from headstart.errors import HeadstartError  # noqa: E402

TASKS = [
    {"task": "digits", "train": "builtin:digits", "backbone": "efficientnet-lite0", "image_size": 32, "train_size": 500},
    {"task": "mnist", "train": "builtin:mnist", "backbone": "efficientnet-lite0", "image_size": 32, "train_size": 500},
    {"task": "rotten-tomatoes", "train": "builtin:rotten-tomatoes", "backbone": "minilm-l6", "max_length": 64,
     "train_size": 500},
    {"task": "brown", "train": "builtin:brown", "backbone": "minilm-l6", "max_length": 64, "train_size": 500},
]


def cpu_seconds() -> float:
    t = os.times()
    return t.user + t.system


def timed_fit(folder: Path, name: str, task: dict, **options) -> dict:
    keys = ("train", "backbone", "image_size", "max_length", "train_size")
    before = cpu_seconds()
    with Stopwatch() as clock:
        run = headstart.fit(**{k: task[k] for k in keys if k in task}, out=folder / name, seed=0,
                            show_progress=False, **options)
    return {"strategy": run.plan.strategy, "test_accuracy": run.metrics["accuracy"], "cpu_seconds": cpu_seconds() - before,
            "wall_seconds": clock.seconds, "other_processes_cpu": clock.others, "run_dir": run.run_dir}


def bench_task(task: dict, args) -> dict | None:
    with tempfile.TemporaryDirectory(prefix="bench-choose-") as tmp:
        folder = Path(tmp)
        try:
            with cold_cache():
                auto = timed_fit(folder, "auto", task, strategy="auto", budget=args.budget, epochs=args.epochs)
        except HeadstartError as err:  # e.g. builtin:brown not installed
            print(f"skipping {task['task']}: {err}")
            return None
        race = json.loads((auto.pop("run_dir") / "auto.json").read_text())
        advice = race["advice"]
        names = ["scratch", "linear-probe", f"freeze:{advice['n_groups'] // 2}", "full", "lp-ft"]
        every = {}
        with cold_cache():
            for name in names:
                every[name] = timed_fit(folder, name.replace(":", "-"), task, strategy=name, epochs=args.epochs)
                every[name].pop("run_dir")
    best = max(every, key=lambda n: every[n]["test_accuracy"])
    total_cpu = sum(r["cpu_seconds"] for r in every.values())
    return {"task": task, "advice": {k: advice[k] for k in ("labels_per_class", "size", "similarity", "quadrant",
                                                             "strategy", "measurements")},
            "race": {k: race[k] for k in ("candidates", "rungs", "winner", "reason", "seconds", "stopped_early")},
            "auto": auto, "every": every, "best_in_hindsight": best,
            "accuracy_gap_points": 100 * (auto["test_accuracy"] - every[best]["test_accuracy"]),
            "compute_share": auto["cpu_seconds"] / total_cpu, "every_cpu_seconds": total_cpu}


def main() -> None:
    parser = argparse.ArgumentParser(description="auto against every strategy in hindsight; advice against the winner")
    parser.add_argument("--budget", default="10m", help="auto's race budget")
    parser.add_argument("--epochs", type=int, default=None, help="epochs per phase on both sides; default: each strategy's own")
    parser.add_argument("--tasks", nargs="+", default=[t["task"] for t in TASKS])
    parser.add_argument("--quick", action="store_true", help="digits and reviews, 150 examples, 2 epochs: a smoke run")
    args = parser.parse_args()
    tasks = [dict(t) for t in TASKS if t["task"] in args.tasks]
    if args.quick:
        tasks = [dict(t, train_size=150) for t in tasks if t["task"] in ("digits", "rotten-tomatoes")]
        args.epochs = 2
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
    write_results("choose", {"args": vars(args), "machine": machine(), "results": results})


if __name__ == "__main__":
    main()
