"""Interrupted and resumed runs against uninterrupted ones, in fp32 and bf16: how close does --resume come?

Each case runs `headstart.fit` three times on the same data, seed and options: once straight through, and once
stopped right after its K-th epoch checkpoint (a raised exception in place of the kill: the process state is
thrown away, only the checkpoint on disk carries over) and then resumed with `resume=True`. The two finished runs
are compared: the test predictions (labels and scores), the metrics. In fp32 they must be equal; bf16 is
where rounding could differ (autocast picks kernels per shape), which is what this measures.

    python bench/resume.py [--quick]
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _common import Stopwatch, check_quiet, machine, print_table, write_results  # noqa: E402

import headstart  # noqa: E402
from headstart import checkpoints  # noqa: E402

os.environ["HEADSTART_CHECKPOINT_INTERVAL"] = "0"  # a checkpoint every epoch, so that "after the K-th" is one point

CASES = [  # name, fit's options, stop after this many checkpoints
    ("digits lp-ft (efficientnet-lite0)", dict(train="builtin:digits", train_size=300, backbone="efficientnet-lite0",
                                               image_size=32, strategy="lp-ft", epochs=4), 6),
    ("reviews full (minilm-l6)", dict(train="builtin:rotten-tomatoes", train_size=300, backbone="minilm-l6",
                                      max_length=64, strategy="full", epochs=3), 1),
]


class _Stop(Exception):
    pass


def _stopping_after(n: int):
    """Checkpoints.save that raises right after its n-th checkpoint is on disk."""
    save, count = checkpoints.Checkpoints.save, [0]

    def wrapper(self, state):
        save(self, state)
        count[0] += 1
        if count[0] == n:
            raise _Stop
    return save, wrapper


def _predictions(run_dir: Path) -> list[dict]:
    with open(run_dir / "predictions.csv", newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def compare_runs(whole: Path, resumed: Path, metrics_a: dict, metrics_b: dict) -> dict:
    a, b = _predictions(whole), _predictions(resumed)
    labels = sum(x["label"] == y["label"] for x, y in zip(a, b)) / len(a)
    scores = max(abs(float(x["score"]) - float(y["score"])) for x, y in zip(a, b))
    key = next(k for k in ("accuracy", "r2", "micro_f1", "token_accuracy") if k in metrics_a)
    return {"same_files": (whole / "predictions.csv").read_bytes() == (resumed / "predictions.csv").read_bytes(),
            "label_agreement": labels, "max_score_difference": scores, "score": key,
            "uninterrupted": metrics_a[key], "resumed": metrics_b[key]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="the first case only")
    args = parser.parse_args()
    rows, results, shares = [], [], []
    for name, options, stop_after in CASES[:1] if args.quick else CASES:
        for precision in ("fp32", "bf16"):
            root = Path(tempfile.mkdtemp(prefix="headstart-bench-resume-"))
            with Stopwatch() as clock:
                whole = headstart.fit(**options, precision=precision, out=root / "whole", show_progress=False)
                save, stopping = _stopping_after(stop_after)
                checkpoints.Checkpoints.save = stopping
                try:
                    headstart.fit(**options, precision=precision, out=root / "resumed", show_progress=False)
                    raise RuntimeError("the run finished before it was stopped; lower the stop")
                except _Stop:
                    pass
                finally:
                    checkpoints.Checkpoints.save = save
                t0 = time.perf_counter()
                resumed = headstart.fit(**options, precision=precision, out=root / "resumed", resume=True,
                                        show_progress=False)
                resumed_seconds = time.perf_counter() - t0
            shares.append(clock.others)
            found = compare_runs(whole.run_dir, resumed.run_dir, whole.metrics, resumed.metrics)
            found.update(case=name, precision=precision, stopped_after_checkpoint=stop_after,
                         uninterrupted_seconds=whole.metrics["train_seconds"], resume_seconds=round(resumed_seconds, 1),
                         others_cpu_share=round(clock.others, 3))
            results.append(found)
            rows.append([name, precision, stop_after, "yes" if found["same_files"] else "no",
                         f"{found['label_agreement']:.3f}", f"{found['max_score_difference']:.2e}",
                         f"{found['uninterrupted']:.4f}", f"{found['resumed']:.4f}"])
    print_table("resumed against uninterrupted runs", ["case", "precision", "stopped after", "same predictions file",
                                                       "labels agree", "max |score diff|", "score, whole",
                                                       "score, resumed"], rows)
    check_quiet(shares)
    write_results("resume", {"machine": machine(), "results": results})


if __name__ == "__main__":
    main()
