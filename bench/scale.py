"""How cost grows with the data: seconds and peak memory of one `headstart.fit` epoch as N grows.

For N = 500, 2,000, 8,000 and 32,000 labelled examples (--sizes), two modalities and two strategies:

  images  builtin:mnist (60,000 digits installed), efficientnet-lite0 at 32 px;
  texts   builtin:rotten-tomatoes (12,808 reviews), minilm-l6 at 64 tokens. The reviews are written to a CSV,
          each made unique by ' #<index>' (the feature cache dedups by content) and cycled to N rows where N is
          larger than the set: N = 32,000 passes over every review 2.5 times. Every N gets the suffix, so that
          each N embeds texts of the same form (' #12345' adds a few tokens to a ~25-token review);
  linear-probe  the frozen backbone embeds train and validation once into the feature cache, the head trains;
  full          every layer trains: the backbone runs forward and backward on every training batch.

Each (modality, strategy, N) runs in a fresh process (peak RSS is per process) with an empty feature cache
(HEADSTART_CACHE, a temporary folder), through the public API: `headstart.fit(data, backbone=..., strategy=...,
epochs=1, train_size=N, image_size=32 | max_length=64, out=..., show_progress=False)`, batch 32, seed 0, the
default precision (bf16 where the CPU has it). train_size draws a stratified N of the loaded data; fit holds 20% of
it out as test and 10% of the rest for validation, so N examples in all are embedded, trained on or predicted.
Timed: fit's wall seconds and its CPU seconds (getrusage RUSAGE_SELF user + sys, all threads), from the call to
the saved run directory (load data and backbone, embed or train, validate, predict the test part, save); and
apart from it the loading (until the engine starts) and the engine (History.seconds). Seconds per example is
fit's seconds / N; a fixed cost (loading, saving, plots) makes it fall with N, so the growth is also given as
the log-log slope of fit's seconds between the two largest N (1: linear; above 1: worse than linear).

Memory: the process's peak RSS (ru_maxrss), and the *working memory*: the peak RSS above what was resident once
fit had loaded the data and the backbone. To mark that moment the child wraps `headstart.train.run` (the engine,
which fit calls once both are loaded): on entry it collects garbage, reads the resident bytes and resets the peak
(/proc/self/clear_refs), so that the loading's own transient peak (MNIST's whole decompressed file) does not hide
the embedding's. A linear probe legitimately keeps its features (N x dim x 4 bytes, fp32, in the in-memory
cache): "less features" subtracts what the cache holds at the end. Flat means the largest N's working memory
(less features) is within 1.25x of the smallest's, or of 32 MiB when the smallest's is below that.

Other processes' share of the CPU during each child (Stopwatch.others) and the load average before and after it
are recorded, since the machine is shared: the seconds depend on them, the memory does not. The JSON
(bench/results/scale.json; scale_quick.json with --quick) is rewritten after every run, "partial" until the end,
so a run cut short keeps what it measured; the plot is bench/results/scale.png (scale_quick.png).

    python bench/scale.py [--quick] [--sizes 500 2000 8000 32000] [--modalities image text]
                          [--strategies linear-probe full]
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import io
import json
import math
import os
import resource
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
FLAT, FLOOR, MiB = 1.25, 32 * 2 ** 20, 2 ** 20
REPO = Path(__file__).resolve().parent.parent


# ---------------------------------------------------------------------------------------------------- the child

def _rss() -> int:
    return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _peak() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _reset_peak() -> bool:
    """Set the peak back to the resident bytes now (Linux >= 4.0: writing 5 to clear_refs); False if it cannot."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return _peak() <= _rss() + 8 * MiB


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def child(modality: str, strategy: str, n: int, data: str, out: Path) -> dict:
    """One fit, measured in this fresh process."""
    import torch

    import headstart
    from headstart import train as engine
    from headstart.train import cache

    marks, engine_run = {}, engine.run

    def run(*args, **kwargs):  # fit calls the engine once the data and the backbone are loaded
        gc.collect()
        marks.update(loading_seconds=time.perf_counter() - wall, loading_cpu_seconds=_cpu() - cpu,
                     rss_loaded=_rss(), peak_loading=_peak(), peak_reset=_reset_peak())
        return engine_run(*args, **kwargs)

    engine.run = run
    name, size = BACKBONE[modality]
    wall, cpu = time.perf_counter(), _cpu()
    result = headstart.fit(data, backbone=name, strategy=strategy, epochs=1, train_size=n, out=out,
                           show_progress=False, **size)
    fit_seconds, fit_cpu = time.perf_counter() - wall, _cpu() - cpu
    peak = _peak()  # since the reset when it worked, else since the start
    features = sum(b.features.numel() * b.features.element_size() for held in cache._memory.values() for b in held)
    m = result.metrics
    n_test = len((out / "predictions.csv").read_text().splitlines()) - 1
    return {"modality": modality, "strategy": strategy, "n": n, "data": data, "backbone": name, **size,
            "n_used": m["n_train"] + m["n_val"] + n_test, "n_train": m["n_train"], "n_val": m["n_val"],
            "n_test": n_test, "accuracy": m.get("accuracy"), "precision": result.spec.train.precision,
            "cached_phases": result.history.cached_phases, "torch_threads": torch.get_num_threads(),
            "fit_seconds": fit_seconds, "fit_cpu_seconds": fit_cpu, "engine_seconds": result.history.seconds,
            **marks, "peak_rss": max(peak, marks["peak_loading"]),
            "working": peak - marks["rss_loaded"], "feature_bytes": features,
            "working_less_features": peak - marks["rss_loaded"] - features}


# ---------------------------------------------------------------------------------------------------- the parent

def text_csv(folder: Path, n: int) -> tuple[str, str]:
    """The reviews as a CSV of max(n, all of them) rows, each ' #<row>', cycled where n is larger; and a note."""
    from headstart.data import load_examples

    reviews = load_examples(DATA["text"])
    rows = max(n, len(reviews))
    texts = [f"{reviews.inputs[i % len(reviews)]} #{i}" for i in range(rows)]
    labels = [reviews.labels[i % len(reviews)] for i in range(rows)]
    path = write_csv(folder / f"reviews-{rows}.csv", SimpleNamespace(inputs=texts, labels=labels))
    note = f"{len(reviews):,} reviews" + (f", cycled to {rows:,} rows ({rows / len(reviews):.2f} passes)"
                                          if rows > len(reviews) else "") + ", each + ' #<row>'"
    return str(path), note


def run_one(modality: str, strategy: str, n: int) -> dict:
    with tempfile.TemporaryDirectory(prefix="headstart-bench-scale-") as tmp:
        data, note = text_csv(Path(tmp), n) if modality == "text" else (DATA["image"], "")
        env = {**os.environ, "HEADSTART_CACHE": str(Path(tmp) / "cache")}
        command = [sys.executable, __file__, "--child", modality, strategy, str(n), data, str(Path(tmp) / "run")]
        load_before = os.getloadavg()
        with Stopwatch() as clock:
            done = subprocess.run(command, check=False, env=env, capture_output=True, text=True)
        if done.returncode != 0:
            raise SystemExit(f"{modality} {strategy} N={n} failed:\n{done.stderr[-3000:]}")
        r = json.loads(done.stdout.strip().splitlines()[-1])
    return r | {"data_note": note or f"{DATA['image']}, a stratified {n:,} of its 60,000",
                "process_seconds": clock.seconds, "other_processes_cpu": clock.others,
                "load_before": load_before, "load_after": os.getloadavg()}


def summarise(rows: list[dict]) -> dict:
    """Per series: seconds per example and working memory at the largest N against the smallest."""
    out = {}
    for key in dict.fromkeys((r["modality"], r["strategy"]) for r in rows):
        mine = sorted((r for r in rows if (r["modality"], r["strategy"]) == key), key=lambda r: r["n"])
        if len(mine) < 2:
            continue
        small, large, before = mine[0], mine[-1], mine[-2]
        per = [r["fit_seconds"] / r["n_used"] for r in (small, large)]
        s = {"n_smallest": small["n_used"], "n_largest": large["n_used"],
             "seconds_per_example_smallest": per[0], "seconds_per_example_largest": per[1],
             "seconds_per_example_ratio": per[1] / per[0],
             "engine_seconds_per_example_ratio": (large["engine_seconds"] / large["n_used"])
             / (small["engine_seconds"] / small["n_used"]),
             "loglog_slope_largest": math.log(large["fit_seconds"] / before["fit_seconds"])
             / math.log(large["n_used"] / before["n_used"])}
        for k in ("working", "working_less_features", "peak_rss"):
            s[f"{k}_smallest"], s[f"{k}_largest"] = small[k], large[k]
            s[f"{k}_ratio"] = large[k] / small[k] if small[k] > 0 else None
        s["flat"] = large["working_less_features"] <= FLAT * max(small["working_less_features"], FLOOR)
        out[f"{key[0]} {key[1]}"] = s
    return out


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.5))
    for i, key in enumerate(dict.fromkeys((r["modality"], r["strategy"]) for r in rows)):
        mine = sorted((r for r in rows if (r["modality"], r["strategy"]) == key), key=lambda r: r["n"])
        n, color = [r["n_used"] for r in mine], f"C{i}"
        left.plot(n, [r["fit_seconds"] for r in mine], "o-", color=color, label=" ".join(key))
        right.plot(n, [r["peak_rss"] / MiB for r in mine], "o-", color=color, label=f"{' '.join(key)}: peak RSS")
        right.plot(n, [max(r["working"], MiB) / MiB for r in mine], "s--", color=color, alpha=0.6,
                   label=f"{' '.join(key)}: working")
    for ax, what in ((left, "fit seconds (1 epoch)"), (right, "MiB")):
        ax.set(xscale="log", yscale="log", xlabel="N (examples)", ylabel=what)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
    left.set_title("time: linear in N is a slope of 1")
    right.set_title("peak RSS and working memory (above data + backbone)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    print(f"wrote {path}")


def save(name: str, data: dict, quiet: bool) -> None:
    with contextlib.redirect_stdout(io.StringIO()) if quiet else contextlib.nullcontext():
        write_results(name, data)


def main() -> None:
    parser = argparse.ArgumentParser(description="seconds and peak memory of one fit epoch as N grows")
    parser.add_argument("--quick", action="store_true", help=f"N = {', '.join(map(str, QUICK))} (unless --sizes)")
    parser.add_argument("--sizes", type=int, nargs="+", metavar="N", help=f"default {SIZES}")
    parser.add_argument("--modalities", nargs="+", choices=list(DATA), default=list(DATA))
    parser.add_argument("--strategies", nargs="+", choices=STRATEGIES, default=STRATEGIES)
    parser.add_argument("--child", nargs=5, metavar=("MODALITY", "STRATEGY", "N", "DATA", "OUT"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        modality, strategy, n, data, out = args.child
        with contextlib.redirect_stdout(sys.stderr):  # fit's console lines; stdout carries the result alone
            result = child(modality, strategy, int(n), data, Path(out))
        print(json.dumps(result))
        return

    sizes = sorted(args.sizes or (QUICK if args.quick else SIZES))
    name = "scale" + ("_quick" if args.quick else "")
    facts, load_start, started = machine(), os.getloadavg(), time.time()
    commit = subprocess.run(["git", "-C", str(REPO), "describe", "--always", "--dirty"], capture_output=True,
                            text=True).stdout.strip()
    if "image" in args.modalities and sizes[-1] > 60_000:
        print("note: builtin:mnist holds 60,000 images; larger N use all of them")
    head = {"args": {k: v for k, v in vars(args).items() if k != "child"}, "sizes": sizes, "machine": facts,
            "commit": commit, "flat_factor": FLAT, "flat_floor_bytes": FLOOR}
    rows = []
    for modality in args.modalities:
        for strategy in args.strategies:
            for n in sizes:
                r = run_one(modality, strategy, n)
                rows.append(r)
                save(name, head | {"partial": True, "rows": rows}, quiet=True)
                print(f"{modality:5} {strategy:12} N={n:>6,}: fit {r['fit_seconds']:.1f} s "
                      f"({r['fit_cpu_seconds']:.1f} CPU s), peak {r['peak_rss'] / MiB:,.0f} MiB, working "
                      f"{r['working'] / MiB:,.0f} MiB, others {r['other_processes_cpu']:.0%} of the CPU, "
                      f"load {r['load_before'][0]:.2f} -> {r['load_after'][0]:.2f}", flush=True)

    table = [[r["modality"], r["strategy"], f"{r['n_used']:,}", f"{r['fit_seconds']:.1f}",
              f"{r['fit_cpu_seconds']:.1f}", f"{1000 * r['fit_seconds'] / r['n_used']:.2f}",
              f"{r['loading_seconds']:.1f}", f"{r['engine_seconds']:.1f}", f"{r['peak_rss'] / MiB:,.0f}",
              f"{r['rss_loaded'] / MiB:,.0f}", f"{r['working'] / MiB:,.0f}", f"{r['feature_bytes'] / MiB:,.0f}",
              f"{r['working_less_features'] / MiB:,.0f}", f"{r['other_processes_cpu']:.0%}",
              f"{r['load_before'][0]:.2f} -> {r['load_after'][0]:.2f}"] for r in rows]
    print_table(f"one fit epoch as N grows ({rows[0]['precision']}, batch 32, {facts['cpu_count']} cores); "
                "MiB; working = peak RSS above what was resident with the data and backbone loaded",
                ["modality", "strategy", "N", "fit s", "CPU s", "ms/example", "loading s", "engine s", "peak RSS",
                 "loaded", "working", "features", "less features", "CPU used by others", "load (1 min)"], table)
    summary = summarise(rows)
    print()
    for key, s in summary.items():
        print(f"{key:18}: s/example {s['seconds_per_example_ratio']:.2f}x from N={s['n_smallest']:,} to "
              f"{s['n_largest']:,} (engine's {s['engine_seconds_per_example_ratio']:.2f}x; log-log slope of fit "
              f"seconds between the two largest N {s['loglog_slope_largest']:.2f}); working memory "
              f"{s['working_smallest'] / MiB:,.0f} -> {s['working_largest'] / MiB:,.0f} MiB, less features "
              f"{s['working_less_features_smallest'] / MiB:,.0f} -> {s['working_less_features_largest'] / MiB:,.0f} "
              f"MiB: {'flat' if s['flat'] else 'NOT flat'} (<= {FLAT}x, or <= {FLAT * FLOOR / MiB:.0f} MiB)")
    for r in rows:
        if not r["peak_reset"]:
            print(f"warning: {r['modality']} {r['strategy']} N={r['n']}: the peak could not be reset; its working "
                  "memory includes the loading's transient peak")
    load_end = os.getloadavg()
    print(f"load average (1, 5, 15 min): {', '.join(f'{x:.2f}' for x in load_start)} at the start, "
          f"{', '.join(f'{x:.2f}' for x in load_end)} at the end ({os.cpu_count()} cores); "
          f"{(time.time() - started) / 60:.1f} minutes")
    check_quiet([r["other_processes_cpu"] for r in rows])
    save(name, head | {"partial": False, "summary": summary, "load_start": load_start, "load_end": load_end,
                       "minutes": (time.time() - started) / 60, "rows": rows}, quiet=False)
    plot(rows, RESULTS / f"{name}.png")


if __name__ == "__main__":
    main()
