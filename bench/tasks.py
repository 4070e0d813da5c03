"""Does transfer help beyond one label? compare on a real regression set, a composite multi-label set and a real
part-of-speech tagging set.

Tasks (`builtin:` sets, all through the public `headstart.compare`):
  regression  builtin:ising        simulated 2-D Ising spin images (64x64) -> temperature; score R^2
  multilabel  builtin:digit-pairs  two real 8x8 digits side by side -> the digits shown; score micro-F1
  tokens      builtin:brown-pos    Brown news sentences -> each word's part of speech; score token accuracy
At a small and a larger training size (--sizes: examples, or sentences for tokens; a random subset drawn with
seed 0), efficientnet-lite0 at --image-size px for images and minilm-l6 for words: linear-probe, full and lp-ft
against scratch and the kind's classical baseline (ridge on 16x16 pixels; one logistic regression per tag; each
word's most frequent tag), on --seeds seeded 80/20 hold-outs (the same for every strategy), each with the
strategy's default epochs. Reported: the score's mean and spread over the splits, and
each strategy's difference from scratch with the paired t-test compare runs. CPU share of other processes is
printed (these are scores, not timings, but a busy machine is worth knowing about).

    python bench/tasks.py [--sizes 200,800] [--seeds 3] [--image-size 32] [--kinds regression,multilabel,tokens]
                          [--quick]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _common import Stopwatch, machine, print_table, write_results  # noqa: E402

import headstart  # noqa: E402

TASKS = {"regression": ("builtin:ising", "efficientnet-lite0"), "multilabel": ("builtin:digit-pairs", "efficientnet-lite0"),
         "tokens": ("builtin:brown-pos", "minilm-l6")}
STRATEGIES = ["linear-probe", "full", "lp-ft"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="200,800")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--image-size", type=int, default=32)
    parser.add_argument("--kinds", default=",".join(TASKS), help="which of the tasks to run (a run cut short "
                        "can be finished kind by kind)")
    parser.add_argument("--quick", action="store_true", help="one size of 100, 2 seeds, 2 epochs: a smoke run")
    args = parser.parse_args()
    sizes = [100] if args.quick else [int(s) for s in args.sizes.split(",")]
    seeds, epochs = (2, 2) if args.quick else (args.seeds, None)

    kinds = args.kinds.split(",")
    results_name = ("tasks_quick" if args.quick else "tasks") + ("" if kinds == list(TASKS) else "_" + "_".join(kinds))
    results, rows = {"machine": machine(), "image_size": args.image_size, "seeds": seeds, "runs": []}, []
    for kind in kinds:
        data, backbone = TASKS[kind]
        for size in sizes:
            with tempfile.TemporaryDirectory() as out, Stopwatch() as clock:
                summary = headstart.compare(data, backbone=backbone, strategies=STRATEGIES,
                                            seeds=seeds, epochs=epochs, train_size=size, image_size=args.image_size,
                                            out=Path(out) / "c", show_progress=False)
            key = summary["score"]["key"]
            run = {"kind": kind, "data": data, "backbone": backbone, "train_size": size, "score": key, "seconds": round(clock.seconds),
                   "other_processes_cpu_share": round(clock.others, 3), "strategies": {}}
            for name, entry in summary["strategies"].items():
                shot = entry["shots"]["all"]
                run["strategies"][name] = {"mean": entry[f"{key}_mean"], "std": entry[f"{key}_std"],
                                           "per_split": entry[f"{key}_per_fold"],
                                           "delta_vs_scratch": shot["delta_vs_scratch"], "p_value": shot["p_value"],
                                           "significant": shot["significant"], "seconds_per_split": entry["seconds"]}
                p = "" if name == "scratch" or shot["p_value"] is None else f"{shot['p_value']:.3f}"
                rows.append([kind, size, name, f"{entry[f'{key}_mean']:.3f} ± {entry[f'{key}_std']:.3f}",
                             "" if name == "scratch" else f"{shot['delta_vs_scratch']:+.3f}", p,
                             f"{entry['seconds']:.0f}"])
            run["recommendation"] = summary["recommendation"]
            results["runs"].append(run)
            print(f"{kind} n={size}: {summary['recommendation']} ({clock.seconds:.0f} s, other processes "
                  f"{clock.others:.0%} of the CPU)", flush=True)
            for row in rows[-len(summary["strategies"]):]:
                print("  " + "  ".join(map(str, row[2:])), flush=True)
            write_results(results_name, results)  # after every run: a run cut short keeps what it measured
    print_table("score on the held-out part (R² for regression, micro-F1 for multi-label, token accuracy for "
                "tokens), mean ± sd over splits", ["kind", "train", "strategy", "score", "vs scratch", "p", "s/split"],
                rows)
    write_results(results_name, results)


if __name__ == "__main__":
    main()
