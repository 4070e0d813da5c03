"""How cost grows with the data: the seconds and the peak memory of one `headstart.fit` epoch as N grows.

N = 500, 2,000, 8,000 and 32,000 labelled examples (--sizes), two modalities, two strategies:

  images        builtin:mnist (60,000 installed, so every N is real), efficientnet-lite0 at 32 px;
  texts         builtin:rotten-tomatoes (12,808 reviews), minilm-l6 at 64 tokens, written to a CSV with each review
                made unique by ' #<row>' (the feature cache dedups by content) and cycled where N is larger than the
                set (N = 32,000: 2.5 passes); every N has the suffix, so every N embeds texts of the same form;
  linear-probe  the frozen backbone embeds train and validation once into the feature cache, the head trains;
  full          every layer trains: the backbone runs forward and backward on every training batch.

Each (modality, strategy, N) is a fresh process (peak RSS is per process) with an empty feature cache
(HEADSTART_CACHE, a temporary folder) calling `headstart.fit(data, backbone=..., strategy=..., epochs=1,
train_size=N, image_size=32 | max_length=64, out=..., show_progress=False)`: batch 32, seed 0, bf16 where the CPU
has it. train_size draws a stratified N; fit holds 20% out as test and 10% of the rest for validation, so N
examples in all go through the backbone. Time: fit's wall seconds and CPU seconds (getrusage RUSAGE_SELF user +
sys, all threads), from the call to the saved run; per example, / N. A fixed cost (loading, a checkpoint, saving,
plots) makes that fall with N, so the growth is also the log-log slope of the seconds between the two largest N
(1: linear). Memory: the peak RSS of the process, and the *working memory*, its peak above what was resident once
fit had loaded the data and the backbone. The peak is VmHWM, not ru_maxrss (exec carries the parent's peak into
ru_maxrss), reset (/proc/self/clear_refs) at every change of phase, so that each phase's peak is its own. The child
marks the phases by wrapping what fit calls (nothing else changes):

  loading     until fit calls the engine (headstart.train.run); resident then (after a gc) is the baseline;
  embed       the feature cache computing features (engine.embed): a linear probe's train and validation;
  checkpoint  the checkpoint fit writes after every epoch (Checkpoints.save);
  train       the rest of the engine: training batches, validation, keeping the best weights;
  test+save   after the engine: predicting the test part, writing the run folder.

A linear probe keeps its features (N x dim x 4 bytes, in the in-memory cache), so each phase's working memory is
shown less those. Flat: at the largest N within 1.25x of the smallest N's, or of 32 MiB where that is below. The
machine is shared: other processes' share of the CPU (Stopwatch.others) and the load average are recorded, as
the seconds depend on them. bench/results/scale.json (scale_quick.json with --quick) is rewritten after every
run, "partial" until the end, so a run cut short keeps what it measured; the plot is scale.png (scale_quick.png).

    python bench/scale.py [--quick] [--sizes 500 2000 8000 32000] [--modalities image text]
                          [--strategies linear-probe full]
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import gc
import io
import json
import math
import os
import resource
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

sys.path.insert(0, str(Path(__file__).parent))
from _common import RESULTS, Stopwatch, check_quiet, machine, print_table, write_csv, write_results  # noqa: E402

SIZES, QUICK = [500, 2_000, 8_000, 32_000], [200, 400, 800]
DATA = {"image": "builtin:mnist", "text": "builtin:rotten-tomatoes"}
BACKBONE = {"image": ("efficientnet-lite0", {"image_size": 32}), "text": ("minilm-l6", {"max_length": 64})}
STRATEGIES = ["linear-probe", "full"]
PHASES = ["loading", "embed", "train", "checkpoint", "test+save"]
FLAT, FLOOR, MiB = 1.25, 32 * 2 ** 20, 2 ** 20
REPO = Path(__file__).resolve().parent.parent


# ---------------------------------------------------------------------------------------------------- the child

def _rss() -> int:
    return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _peak() -> int:
    return int(Path("/proc/self/status").read_text().split("VmHWM:")[1].split()[0]) * 1024


def _cpu() -> float:
    return sum(resource.getrusage(resource.RUSAGE_SELF)[:2])  # user + sys, all threads


class Phases:
    """The peak RSS and the wall seconds of each phase; the peak is reset whenever the phase changes."""

    def __init__(self):
        self.now, self.since, self.peak, self.seconds, self.reset = "loading", time.perf_counter(), {}, {}, True

    def enter(self, name: str) -> str:
        was, now = self.now, time.perf_counter()
        self.peak[was] = max(self.peak.get(was, 0), _peak())
        self.seconds[was] = self.seconds.get(was, 0.0) + now - self.since
        self.now, self.since = name, now
        with contextlib.suppress(OSError):  # Linux >= 4.0: writing 5 resets the peak to the resident bytes
            Path("/proc/self/clear_refs").write_text("5")
        self.reset &= _peak() <= _rss() + 8 * MiB
        return was

    def wrap(self, owner, attribute: str, name: str) -> None:
        inner = getattr(owner, attribute)

        def wrapped(*args, **kwargs):
            was = self.enter(name)
            try:
                return inner(*args, **kwargs)
            finally:
                self.enter(was)

        setattr(owner, attribute, wrapped)


def child(modality: str, strategy: str, n: int, data: str, out: Path) -> dict:
    """One fit, measured in this fresh process."""
    import torch

    import headstart
    from headstart import checkpoints, train
    from headstart.train import cache, engine

    phases, loaded, engine_run = Phases(), [], train.run

    def run(*args, **kwargs):  # fit calls the engine once the data and the backbone are loaded
        gc.collect()
        loaded.append(_rss())
        phases.enter("train")
        try:
            return engine_run(*args, **kwargs)
        finally:
            phases.enter("test+save")

    train.run = run
    phases.wrap(engine, "embed", "embed")
    phases.wrap(checkpoints.Checkpoints, "save", "checkpoint")
    name, size = BACKBONE[modality]
    phases.since = wall = time.perf_counter()
    cpu = _cpu()
    result = headstart.fit(data, backbone=name, strategy=strategy, epochs=1, train_size=n, out=out,
                           show_progress=False, **size)
    fit_seconds, fit_cpu = time.perf_counter() - wall, _cpu() - cpu
    phases.enter("done")
    features = sum(b.features.numel() * b.features.element_size() for held in cache._memory.values() for b in held)
    with open(out / "predictions.csv", newline="", encoding="utf-8") as f:
        n_test = sum(1 for _ in csv.reader(f)) - 1
    m = result.metrics
    return {"modality": modality, "strategy": strategy, "n": n, "data": data, "backbone": name, **size,
            "n_used": m["n_train"] + m["n_val"] + n_test, "n_train": m["n_train"], "n_val": m["n_val"],
            "n_test": n_test, "accuracy": m.get("accuracy"), "precision": result.spec.train.precision,
            "cached_phases": result.history.cached_phases, "torch_threads": torch.get_num_threads(),
            "fit_seconds": fit_seconds, "fit_cpu_seconds": fit_cpu,
            "engine_seconds": result.history.seconds, "phase_seconds": phases.seconds, "phase_peaks": phases.peak,
            "peak_reset": phases.reset, "rss_loaded": loaded[0], "peak_rss": max(phases.peak.values()),
            "working": max(v for k, v in phases.peak.items() if k != "loading") - loaded[0], "feature_bytes": features,
            "working_less_features": {k: v - loaded[0] - features for k, v in phases.peak.items() if k != "loading"}}


# ---------------------------------------------------------------------------------------------------- the parent

def text_csv(folder: Path, n: int) -> tuple[str, str]:
    """The reviews as a CSV of max(n, all of them) rows, each + ' #<row>', cycled where n is larger; a note."""
    from headstart.data import load_examples

    reviews = load_examples(DATA["text"])
    rows = max(n, len(reviews))
    texts = [f"{reviews.inputs[i % len(reviews)]} #{i}" for i in range(rows)]
    labels = [reviews.labels[i % len(reviews)] for i in range(rows)]
    path = write_csv(folder / f"reviews-{rows}.csv", SimpleNamespace(inputs=texts, labels=labels))
    cycled = f", cycled to {rows:,} rows ({rows / len(reviews):.2f} passes)" if rows > len(reviews) else ""
    return str(path), f"{DATA['text']}: {len(reviews):,} reviews{cycled}, each + ' #<row>'"


def run_one(modality: str, strategy: str, n: int) -> dict:
    with tempfile.TemporaryDirectory(prefix="headstart-bench-scale-") as tmp:
        data, note = text_csv(Path(tmp), n) if modality == "text" else (DATA["image"], "")
        env = {**os.environ, "HEADSTART_CACHE": str(Path(tmp) / "cache")}
        command = [sys.executable, __file__, "--child", modality, strategy, str(n), data, str(Path(tmp) / "run")]
        load_before = os.getloadavg()
        with Stopwatch() as clock:
            done = subprocess.run(command, check=False, env=env, capture_output=True, text=True)
        if done.returncode != 0:
            raise SystemExit(f"{modality} {strategy} N={n} failed (exit {done.returncode}):\n{done.stderr[-3000:]}")
        r = json.loads(done.stdout.strip().splitlines()[-1])
    return r | {"data_note": note or f"{DATA['image']}: a stratified {r['n_used']:,} of its 60,000",
                "process_seconds": clock.seconds, "other_processes_cpu": clock.others,
                "load_before": load_before, "load_after": os.getloadavg()}


def series(rows: list[dict]) -> dict[str, list[dict]]:
    keys = dict.fromkeys(f"{r['modality']} {r['strategy']}" for r in rows)
    return {k: sorted((r for r in rows if f"{r['modality']} {r['strategy']}" == k), key=lambda r: r["n"]) for k in keys}


def summarise(rows: list[dict]) -> dict:
    """Per series, the largest N against the smallest: seconds per example, working memory (less features) by
    phase; and the log-log slope of fit's seconds between the two largest N."""
    out = {}
    for key, mine in series(rows).items():
        if len(mine) < 2:
            continue
        small, large, before = mine[0], mine[-1], mine[-2]
        per = [r["fit_seconds"] / r["n_used"] for r in (small, large)]
        s = out[key] = {
            "n_smallest": small["n_used"], "n_largest": large["n_used"], "seconds_per_example_smallest": per[0],
            "seconds_per_example_largest": per[1], "seconds_per_example_ratio": per[1] / per[0],
            "loglog_slope_largest": math.log(large["fit_seconds"] / before["fit_seconds"])
            / math.log(large["n_used"] / before["n_used"]),
            "working_smallest": small["working"], "working_largest": large["working"],
            "peak_rss_smallest": small["peak_rss"], "peak_rss_largest": large["peak_rss"], "working_by_phase": {}}
        for phase in PHASES[1:]:
            a, b = small["working_less_features"].get(phase), large["working_less_features"].get(phase)
            if a is not None and b is not None:
                s["working_by_phase"][phase] = {"smallest": a, "largest": b, "ratio": b / a if a > 0 else None,
                                                "flat": b <= FLAT * max(a, FLOOR)}
        s["flat"] = all(v["flat"] for v in s["working_by_phase"].values())
    return out


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib
    import matplotlib.ticker

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.8))
    for i, (key, mine) in enumerate(series(rows).items()):
        n = [r["n_used"] for r in mine]
        left.plot(n, [r["fit_seconds"] for r in mine], "o-", color=f"C{i}", label=key)
        right.plot(n, [r["peak_rss"] / MiB for r in mine], "o-", color=f"C{i}", label=f"{key}: peak RSS")
        right.plot(n, [max(r["working"], MiB) / MiB for r in mine], "s--", color=f"C{i}", alpha=0.6,
                   label=f"{key}: working")
    sizes = sorted({r["n_used"] for r in rows})
    for ax, unit in ((left, "fit seconds (1 epoch)"), (right, "MiB")):
        ax.set(xscale="log", yscale="log", xlabel="N (examples)", ylabel=unit)
        ax.set_xticks(sizes, [f"{n:,}" for n in sizes], minor=False)
        ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
    left.set_title("time (linear in N: a slope of 1)")
    right.set_title("peak RSS (solid); working memory (dashed)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    print(f"wrote {path}")


def report(rows: list[dict], facts: dict) -> dict:
    """The two tables and, per series, the verdict lines; the summary."""
    cells = lambda r: [f"{r['modality']} {r['strategy']}", f"{r['n_used']:,}"]  # noqa: E731
    print_table(f"time of one fit epoch ({rows[0]['precision']}, batch 32, {facts['cpu_count']} cores), seconds: fit "
                "= loading + embed + train + checkpoint + test+save",
                ["series", "N", "fit", "CPU", "ms/example", *PHASES, "CPU used by others", "load (1 min)"],
                [[*cells(r), f"{r['fit_seconds']:.1f}", f"{r['fit_cpu_seconds']:.1f}",
                  f"{1000 * r['fit_seconds'] / r['n_used']:.1f}",
                  *(f"{r['phase_seconds'][p]:.1f}" if p in r["phase_seconds"] else "-" for p in PHASES),
                  f"{r['other_processes_cpu']:.0%}", f"{r['load_before'][0]:.2f} -> {r['load_after'][0]:.2f}"]
                 for r in rows])
    print_table("memory, MiB: peak RSS; working = the peak above what was resident with the data and the backbone "
                "loaded; by phase, less the features the cache holds",
                ["series", "N", "peak RSS", "loaded", "working", "features", *PHASES[1:]],
                [[*cells(r), *(f"{r[k] / MiB:,.0f}" for k in ("peak_rss", "rss_loaded", "working", "feature_bytes")),
                  *(f"{r['working_less_features'][p] / MiB:,.0f}" if p in r["working_less_features"] else "-"
                    for p in PHASES[1:])] for r in rows])
    summary = summarise(rows)
    print()
    for key, s in summary.items():
        phases = ", ".join(f"{p} {v['smallest'] / MiB:,.0f} -> {v['largest'] / MiB:,.0f}"
                           for p, v in s["working_by_phase"].items())
        print(f"{key}: seconds per example x{s['seconds_per_example_ratio']:.2f} from N={s['n_smallest']:,} to "
              f"{s['n_largest']:,}, log-log slope between the two largest N {s['loglog_slope_largest']:.2f}; working "
              f"memory {s['working_smallest'] / MiB:,.0f} -> {s['working_largest'] / MiB:,.0f} MiB, less features "
              f"{phases} MiB: "
              f"{'flat' if s['flat'] else 'NOT flat'} (<= {FLAT}x, or <= {FLAT * FLOOR / MiB:.0f} MiB)")
    for r in rows:
        if not r["peak_reset"]:
            print(f"warning: {r['modality']} {r['strategy']} N={r['n']}: the peak could not be reset; a phase's "
                  "working memory may include an earlier phase's peak")
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description="seconds and peak memory of one fit epoch as N grows")
    parser.add_argument("--quick", action="store_true", help=f"N = {', '.join(map(str, QUICK))} (unless --sizes)")
    parser.add_argument("--sizes", type=int, nargs="+", metavar="N", help=f"default: {SIZES}")
    parser.add_argument("--modalities", nargs="+", choices=list(DATA), default=list(DATA))
    parser.add_argument("--strategies", nargs="+", choices=STRATEGIES, default=STRATEGIES)
    parser.add_argument("--child", nargs=5, metavar=("MODALITY", "STRATEGY", "N", "DATA", "OUT"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        modality, strategy, n, data, out = args.child
        with contextlib.redirect_stdout(sys.stderr):  # fit's console lines: stdout carries the result alone
            result = child(modality, strategy, int(n), data, Path(out))
        print(json.dumps(result))
        return

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # so that subprocess.run kills the child first
    sizes, name = sorted(args.sizes or (QUICK if args.quick else SIZES)), "scale" + ("_quick" if args.quick else "")
    facts, load_start, started = machine(), os.getloadavg(), time.time()
    commit = subprocess.run(["git", "-C", str(REPO), "describe", "--always", "--dirty"], capture_output=True,
                            text=True).stdout.strip()
    head = {"args": {k: v for k, v in vars(args).items() if k != "child"}, "sizes": sizes, "machine": facts,
            "commit": commit, "flat_factor": FLAT, "flat_floor_bytes": FLOOR}
    rows = []
    for modality in args.modalities:
        for strategy in args.strategies:
            for n in sizes:
                rows.append(r := run_one(modality, strategy, n))
                with contextlib.redirect_stdout(io.StringIO()):  # rewritten after every run: "partial" till the end
                    write_results(name, head | {"partial": True, "rows": rows})
                print(f"{modality:5} {strategy:12} N={r['n_used']:>6,}: fit {r['fit_seconds']:.1f} s "
                      f"({r['fit_cpu_seconds']:.1f} CPU s), peak {r['peak_rss'] / MiB:,.0f} MiB, working "
                      f"{r['working'] / MiB:,.0f} MiB, others {r['other_processes_cpu']:.0%} of the CPU, load "
                      f"{r['load_before'][0]:.2f} -> {r['load_after'][0]:.2f}  [{r['data_note']}]", flush=True)

    summary = report(rows, facts)
    load_end = os.getloadavg()
    print(f"load average (1, 5, 15 min): {', '.join(f'{x:.2f}' for x in load_start)} at the start, "
          f"{', '.join(f'{x:.2f}' for x in load_end)} at the end ({os.cpu_count()} cores); "
          f"{(time.time() - started) / 60:.1f} minutes")
    check_quiet([r["other_processes_cpu"] for r in rows])
    write_results(name, head | {"partial": False, "summary": summary, "load_start": load_start, "load_end": load_end,
                                "minutes": (time.time() - started) / 60, "rows": rows})
    plot(rows, RESULTS / f"{name}.png")


if __name__ == "__main__":
    main()
