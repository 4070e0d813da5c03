"""Bounded memory: peak RSS of embedding 60,000 MNIST images and 100,000 texts, and of predicting them, as N grows.

Each N runs in a fresh process (peak RSS is per process) with its own empty feature cache (HEADSTART_CACHE, a
temporary folder). The process loads the backbone, then the inputs, then:

  cold     `train.cache.embed(backbone, inputs, 64, precision)`: computed, written to the disk cache, as a
           linear probe's first epoch does;
  warm     the in-memory cache cleared and the same call again: read back from the disk cache, as a later run does;
  predict  the features dropped, `TransferModel(backbone, task).predict_proba(inputs, 64, precision)` with a new
           10-class head, as `headstart predict` does (the backbone runs again; the output is N x 10); by default
           for images at the smallest and largest N only (--predict, --predict-on), as it doubles the time.

Before the inputs, two batches of throwaway inputs go through the backbone, so that a first forward pass's one-time
allocations count in the baseline and not in the smallest N's working memory. Measured: peak RSS (getrusage
ru_maxrss) after loading the backbone, after loading the inputs and after the cold embedding; the resident bytes
then; the bytes of the inputs held (sys.getsizeof of the list and of each input) and of the features (N x dim x 4).
Before each phase the peak is reset (/proc/self/clear_refs), so each phase's peak is its own (the loading's
transient peak, MNIST's whole decompressed file, cannot hide the embedding's). What must stay flat is the
*working memory*:

  cold working    = the cold phase's peak - resident after loading the inputs - feature bytes
  warm working    = the warm phase's peak - resident before it - feature bytes
  predict working = the predict phase's peak - resident before it - output bytes (N x 10 x 4)

and, to say where any growth goes, "kept": what is still resident after embed returns beyond the features it
returned, and what clearing the in-memory cache gives back. The baseline is the smallest N of the same run: each
working memory is shown as a ratio to it, and "extra copies" is (working at the largest N - at the smallest) /
(features at the largest - at the smallest): 0 when the working memory is flat, 1 when the features are held
twice. With --baseline-ref REF the committed code at REF (`git archive`, imported through PYTHONPATH) embeds the
smallest and largest N too (images by default, --baseline-on), the working tree's figures against it as ratios.
A run cut short keeps its rows in the JSON; --resume reuses those measured with the same code.

Images: the first N of builtin:mnist (28x28 digits, each copied out of the file's buffer, as separate images
are held), efficientnet-lite0 at 32 px. Texts: the installed real sets (rotten-tomatoes, brown, debates, spam),
shuffled once (seed 0) and cycled, each made unique by ' #<index>' (the cache dedups by content, and no package
here ships 100,000 distinct texts), minilm-l6 at 64 tokens. Precision: bf16 where the CPU has it. Seconds are
wall and CPU (all threads) per phase; other processes' share of the CPU and the load average are shown because
the machine is shared (the memory figures do not depend on them; the seconds do).

    python bench/memory.py [--quick] [--modalities image text] [--predict ends|all|none] [--predict-on image text]
                           [--baseline-ref HEAD] [--baseline-on image text] [--resume]
                           [--image-sizes 7500 15000 30000 60000] [--text-sizes 12500 25000 50000 100000]
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import hashlib
import io
import json
import os
import random
import resource
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _common import Stopwatch, check_quiet, machine, print_table, write_results  # noqa: E402

SIZES = {"image": [7_500, 15_000, 30_000, 60_000], "text": [12_500, 25_000, 50_000, 100_000]}
TEXT_SETS = ("builtin:rotten-tomatoes", "builtin:brown", "builtin:debates", "builtin:spam")
BATCH = 64
CLASSES = 10
FLAT = 1.25  # flat: the largest N's working memory within this factor of the smallest's ...
FLOOR = 32 * 2 ** 20  # ... or of this, where the smallest's is below it (RSS moves by a few MiB for no reason)
REPO = Path(__file__).resolve().parent.parent
MiB = 2 ** 20


# ---------------------------------------------------------------------------------------------------- the child

def _rss() -> int:
    """Resident bytes now."""
    return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _peak() -> int:
    """Peak resident bytes of this process (since start, or since the last _reset_peak)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _reset_peak() -> bool:
    """Set the peak back to the resident bytes now (Linux >= 4.0: writing 5 to clear_refs); False if it cannot."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return _peak() <= _rss() + 8 * MiB


def _settle() -> int:
    gc.collect()
    return _rss()


def _images(n: int) -> tuple[list, dict]:
    import numpy as np

    from headstart.data import load_examples

    examples = load_examples("builtin:mnist")
    if n > len(examples):
        raise SystemExit(f"builtin:mnist holds {len(examples)} images, fewer than {n}")
    return [np.array(x) for x in examples.inputs[:n]], {"builtin:mnist": n}


def _texts(n: int) -> tuple[list, dict]:
    from headstart.data import load_examples
    from headstart.errors import HeadstartError

    pool, sets = [], {}
    for name in TEXT_SETS:
        try:
            texts = [str(t) for t in load_examples(name).inputs]
        except HeadstartError:
            continue  # not installed here
        pool += [(name, t) for t in texts]
        sets[name] = len(texts)
    random.Random(0).shuffle(pool)
    used = {name: 0 for name in sets}
    inputs = []
    for i in range(n):
        name, text = pool[i % len(pool)]
        inputs.append(f"{text} #{i}")
        used[name] += 1
    return inputs, {"installed": sets, "pool": len(pool), "passes_over_pool": round(n / len(pool), 2), "used": used}


def _throwaway(modality: str, n: int) -> list:
    """Inputs no run embeds, for the warm-up: random digits, or texts of up to 64 tokens and more."""
    import numpy as np

    rng = np.random.default_rng(12345)
    if modality == "image":
        return [rng.integers(0, 256, (28, 28), dtype=np.uint8) for _ in range(n)]
    return [" ".join(f"warm{int(w)}" for w in rng.integers(0, 10 ** 6, int(k))) for k in rng.integers(1, 80, n)]


def child(modality: str, n: int, predict: bool) -> dict:
    """One N, measured in this fresh process."""
    import torch

    import headstart
    from headstart import backbones
    from headstart.config import BackboneSpec
    from headstart.model import TransferModel
    from headstart.precision import resolve_precision
    from headstart.tasks import ClassificationTask
    from headstart.train import cache

    code = Path(cache.__file__)
    out = {"modality": modality, "n": n, "headstart": str(Path(headstart.__file__).parent),
           "cache_py_sha256": hashlib.sha256(code.read_bytes()).hexdigest()[:16]}
    precision = out["precision"] = resolve_precision(None)
    spec = BackboneSpec(name="efficientnet-lite0", image_size=32) if modality == "image" else \
        BackboneSpec(name="minilm-l6", max_length=64)
    backbone = backbones.load(spec).eval()
    model = TransferModel(backbone, ClassificationTask([str(c) for c in range(CLASSES)]))
    out |= {"backbone": spec.name, "dim": backbone.dim, "batch_size": BATCH, "torch_threads": torch.get_num_threads()}
    out["rss_after_backbone"] = _settle()
    # Warm-up: two batches of throwaway inputs through the backbone (not the cache), so the one-time allocations of a
    # first forward pass (kernels, thread pools) are in the baseline, not in the working memory of the smallest N.
    model.predict_proba(_throwaway(modality, 2 * BATCH), BATCH, precision)
    out["rss_before_inputs"], out["peak_before_inputs"] = _settle(), _peak()

    inputs, out["inputs_from"] = (_images if modality == "image" else _texts)(n)
    out["input_bytes"] = sys.getsizeof(inputs) + sum(sys.getsizeof(x) for x in inputs)
    out["rss_after_inputs"], out["peak_after_inputs"] = _settle(), _peak()

    # cold: computed and written to the (empty, private) disk cache. The peak is reset first, so the loading's own
    # transient peak (MNIST's whole decompressed file) cannot hide the embedding's.
    out["peak_reset"] = _reset_peak()
    wall, cpu = time.perf_counter(), time.process_time()
    features = cache.embed(backbone, inputs, BATCH, precision, show_progress=False)
    out["embed_seconds"], out["embed_cpu_seconds"] = time.perf_counter() - wall, time.process_time() - cpu
    out["peak_of_embedding"] = _peak()  # since the reset: the embedding's own
    out["peak_after_embedding"] = max(out["peak_after_inputs"], out["peak_of_embedding"])  # since the start
    out["rss_after_embedding"] = _settle()
    out["feature_bytes"] = features.numel() * features.element_size()
    out["feature_shape"] = list(features.shape)
    embed_peak = out["peak_of_embedding"] if out["peak_reset"] else out["peak_after_embedding"]
    out["cold_working"] = embed_peak - out["rss_after_inputs"] - out["feature_bytes"]
    out["kept_beyond_features"] = out["rss_after_embedding"] - out["rss_after_inputs"] - out["feature_bytes"]
    # entries indexed in memory: blocks of keys now, a dict of per-example views before (a --baseline-ref's code)
    out["memory_cache_entries"] = sum(len(b.keys) if hasattr(b, "keys") and not isinstance(b, str) else 1
                                      for held in cache._memory.values() for b in held)
    cache.clear_memory_cache()
    out["freed_by_clearing_memory_cache"] = out["rss_after_embedding"] - _settle()
    out["disk_cache_bytes"] = sum(p.stat().st_size for p in cache.cache_dir().glob("*.safetensors"))

    # warm: read back from the disk cache
    del features
    before = _settle()
    reset = _reset_peak()
    wall = time.perf_counter()
    features = cache.embed(backbone, inputs, BATCH, precision, show_progress=False)
    out["warm_seconds"] = time.perf_counter() - wall
    out["warm_working"] = (_peak() - before - out["feature_bytes"]) if reset else None
    del features
    cache.clear_memory_cache()

    # predict: the backbone again on the raw inputs, a new head, N x 10 probabilities
    if predict:
        before = _settle()
        reset = _reset_peak()
        wall, cpu = time.perf_counter(), time.process_time()
        proba = model.predict_proba(inputs, BATCH, precision)
        out["predict_seconds"], out["predict_cpu_seconds"] = time.perf_counter() - wall, time.process_time() - cpu
        out["output_bytes"] = int(proba.nbytes)
        out["predict_working"] = (_peak() - before - out["output_bytes"]) if reset else None
    out["rss_at_end"], out["peak_at_end"] = _rss(), _peak()
    return out


# ---------------------------------------------------------------------------------------------------- the parent

def _committed_src(ref: str, folder: Path) -> Path:
    """The headstart source at a git ref, extracted (nothing in the repository changes)."""
    archive = folder / "src.tar"
    subprocess.run(["git", "-C", str(REPO), "archive", "--format=tar", "-o", str(archive), ref, "src"], check=True)
    with tarfile.open(archive) as tar:
        tar.extractall(folder, filter="data")
    return folder / "src"


def run_one(modality: str, n: int, predict: bool, code: str, src: Path | None) -> dict:
    with tempfile.TemporaryDirectory(prefix="headstart-bench-memory-") as tmp:
        env = {**os.environ, "HEADSTART_CACHE": str(Path(tmp) / "cache"), "HEADSTART_CACHE_MAX": "20GB"}
        if src is not None:
            env["PYTHONPATH"] = os.pathsep.join([str(src), *filter(None, [os.environ.get("PYTHONPATH")])])
        result = Path(tmp) / "result.json"
        command = [sys.executable, __file__, "--child", modality, str(n), str(result),
                   "--predict", "all" if predict else "none"]
        load_before = os.getloadavg()
        with Stopwatch() as clock:
            done = subprocess.run(command, check=False, env=env, capture_output=True, text=True)
        load_after = os.getloadavg()
        if done.returncode != 0:
            raise SystemExit(f"{modality} N={n} ({code}) failed:\n{done.stderr[-3000:]}")
        r = json.loads(result.read_text())
    r |= {"code": code, "process_seconds": clock.seconds, "other_processes_cpu": clock.others,
          "load_before": load_before, "load_after": load_after}
    return r


def _mib(x) -> str:
    return "n/a" if x is None else f"{x / MiB:,.0f}"


def _ratio(x, base) -> float | None:
    return None if x is None or base is None or base <= 0 else x / base


def _fmt(x, spec=".2f", suffix="x") -> str:
    return "n/a" if x is None else f"{x:{spec}}{suffix}"


def summarise(rows: list[dict], modality: str, code: str) -> dict:
    mine = sorted((r for r in rows if r["modality"] == modality and r["code"] == code), key=lambda r: r["n"])
    if len(mine) < 2:
        return {}
    small, large = mine[0], mine[-1]
    out = {"n_smallest": small["n"], "n_largest": large["n"]}
    for key in ("cold_working", "warm_working", "predict_working", "kept_beyond_features"):
        a, b = small.get(key), large.get(key)
        if a is None or b is None:
            continue
        out[f"{key}_smallest"], out[f"{key}_largest"] = a, b
        out[f"{key}_ratio"] = _ratio(b, a)
        grown = b - a
        out[f"{key}_growth_bytes"] = grown
        out[f"{key}_growth_per_example"] = grown / (large["n"] - small["n"])
        out[f"{key}_extra_feature_copies"] = grown / (large["feature_bytes"] - small["feature_bytes"])
        if key != "kept_beyond_features":
            out[f"{key}_flat"] = b <= FLAT * max(a, FLOOR)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description="peak memory of embedding and prediction as N grows")
    parser.add_argument("--quick", action="store_true", help="only the two smallest N of each modality")
    parser.add_argument("--modalities", nargs="+", choices=list(SIZES), default=list(SIZES))
    parser.add_argument("--predict", choices=["ends", "all", "none"], default="ends",
                        help="where the prediction phase runs (it runs the backbone over the inputs a second time): "
                             "the smallest and largest N (default), every N, or nowhere")
    parser.add_argument("--predict-on", nargs="+", choices=list(SIZES), default=["image"],
                        help="the modalities whose prediction phase runs (default: images; 100,000 texts through "
                             "MiniLM a second time take as long as embedding them)")
    parser.add_argument("--baseline-ref", default=None, metavar="REF",
                        help="also embed the smallest and largest N with the committed code at REF (e.g. HEAD)")
    parser.add_argument("--baseline-on", nargs="+", choices=list(SIZES), default=["image"],
                        help="the modalities the --baseline-ref code embeds (default: images; the embedding code is "
                             "the same for both)")
    parser.add_argument("--resume", action="store_true",
                        help="reuse the rows of bench/results/memory.json (a run cut short) measured with the same "
                             "code (the same cache.py, the same commit) and phases; run only the others")
    parser.add_argument("--image-sizes", type=int, nargs="+", default=SIZES["image"], metavar="N")
    parser.add_argument("--text-sizes", type=int, nargs="+", default=SIZES["text"], metavar="N")
    parser.add_argument("--child", nargs=3, metavar=("MODALITY", "N", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        modality, n, path = args.child
        Path(path).write_text(json.dumps(child(modality, int(n), args.predict != "none")))
        return

    SIZES.update(image=sorted(args.image_sizes), text=sorted(args.text_sizes))
    facts, load_start, started = machine(), os.getloadavg(), time.time()
    if args.quick:
        SIZES.update({m: SIZES[m][:2] for m in SIZES})

    def ends(m: str) -> list[int]:
        return sorted({SIZES[m][0], SIZES[m][-1]})

    plan = [(m, n, "working tree", None) for m in args.modalities for n in SIZES[m]]
    rows, ours = [], hashlib.sha256((REPO / "src/headstart/train/cache.py").read_bytes()).hexdigest()[:16]
    earlier = _earlier_rows(args) if args.resume else []
    with tempfile.TemporaryDirectory(prefix="headstart-bench-memory-src-") as src_folder:
        if args.baseline_ref:
            commit = subprocess.run(["git", "-C", str(REPO), "rev-parse", args.baseline_ref], check=True,
                                    capture_output=True, text=True).stdout.strip()
            src = _committed_src(commit, Path(src_folder))
            plan += [(m, n, args.baseline_ref, src) for m in args.modalities if m in args.baseline_on for n in ends(m)]
        for modality, n, code, src in plan:
            predict = src is None and modality in args.predict_on and (
                args.predict == "all" or (args.predict == "ends" and n in ends(modality)))
            wanted = {"modality": modality, "n": n, "code": code,
                      **({"cache_py_sha256": ours} if src is None else {"code_commit": commit})}
            r = next((r for r in earlier if all(r.get(k) == v for k, v in wanted.items())
                      and ("predict_working" in r) == predict), None)
            if r is None:
                r = run_one(modality, n, predict, code, src) | {k: v for k, v in wanted.items() if k == "code_commit"}
            else:
                earlier.remove(r)
                r["reused"] = True
            rows.append(r)
            _save(args, rows, partial=True, machine=facts)
            print(f"{modality:5} N={n:>7,} {code:12}{' (reused)' if r.get('reused') else ''}: cold working "
                  f"{_mib(r['cold_working'])} MiB, features "
                  f"{_mib(r['feature_bytes'])} MiB, embed {r['embed_seconds']:.0f} s, "
                  f"others {r['other_processes_cpu']:.0%} of the CPU, load {r['load_before'][0]:.2f} -> "
                  f"{r['load_after'][0]:.2f}", flush=True)

    codes = list(dict.fromkeys(r["code"] for r in rows))
    for modality in args.modalities:
        table = []
        for code in codes:
            mine = sorted((r for r in rows if r["modality"] == modality and r["code"] == code), key=lambda r: r["n"])
            for r in mine:
                table.append([code, f"{r['n']:,}", _mib(r["input_bytes"]), _mib(r["feature_bytes"]),
                              _mib(r["peak_before_inputs"]), _mib(r["rss_after_inputs"]),
                              _mib(r["peak_after_inputs"]), _mib(r["peak_after_embedding"]),
                              _mib(r["cold_working"]), _fmt(_ratio(r["cold_working"], mine[0]["cold_working"])),
                              _mib(r["kept_beyond_features"]), _mib(r["freed_by_clearing_memory_cache"]),
                              _mib(r["warm_working"]), _mib(r.get("predict_working"))])
        print_table(f"{modality}s: memory in MiB ({rows[0]['precision']}, batch {BATCH}); working = peak above "
                    "what was resident before the phase, less its result",
                    ["code", "N", "inputs", "features", "peak before inputs", "RSS after inputs", "peak after inputs",
                     "peak after embed", "cold working", "vs smallest", "kept beyond features",
                     "freed by clearing memory cache", "warm working", "predict working"], table)
        table = [[r["code"], f"{r['n']:,}", f"{r['embed_seconds']:.0f}", f"{r['embed_cpu_seconds']:.0f}",
                  f"{r['n'] / r['embed_seconds']:.0f}", f"{r['warm_seconds']:.1f}",
                  f"{r['predict_seconds']:.0f}" if "predict_seconds" in r else "-",
                  f"{r['predict_cpu_seconds']:.0f}" if "predict_cpu_seconds" in r else "-",
                  f"{r['other_processes_cpu']:.0%}", f"{r['load_before'][0]:.2f} -> {r['load_after'][0]:.2f}"]
                 for code in codes for r in sorted((r for r in rows if r["modality"] == modality and r["code"] == code),
                                                   key=lambda r: r["n"])]
        print_table(f"{modality}s: time", ["code", "N", "embed s", "embed CPU s", "per s", "warm s", "predict s",
                                            "predict CPU s", "CPU used by others", "load (1 min)"], table)

    summary = {m: {code: summarise(rows, m, code) for code in codes} for m in args.modalities}
    verdicts = []
    print()
    for modality in args.modalities:
        for code in codes:
            s = summary[modality][code]
            for key, name in (("cold_working", "cold embed"), ("warm_working", "warm embed"),
                              ("predict_working", "predict")):
                if f"{key}_ratio" not in s and f"{key}_largest" not in s:
                    continue
                flat = s.get(f"{key}_flat", False)
                if code == "working tree":
                    verdicts.append(flat)
                print(f"{modality:5} {code:12} {name:10}: working memory {_mib(s[f'{key}_smallest'])} -> "
                      f"{_mib(s[f'{key}_largest'])} MiB from N={s['n_smallest']:,} to {s['n_largest']:,} "
                      f"({_fmt(s.get(f'{key}_ratio'))}, "
                      f"{s[f'{key}_growth_per_example']:,.0f} bytes per example, "
                      f"{s[f'{key}_extra_feature_copies']:.2f} extra copies of the features): "
                      f"{'flat' if flat else 'NOT flat'} (<= {FLAT}x, or <= {FLAT * FLOOR / MiB:.0f} MiB)")
        if args.baseline_ref and "working tree" in codes:
            for n in sorted({r["n"] for r in rows if r["modality"] == modality and r["code"] == args.baseline_ref}):
                ours = next((r for r in rows
                             if (r["modality"], r["n"], r["code"]) == (modality, n, "working tree")), None)
                theirs = next(r for r in rows if (r["modality"], r["n"], r["code"]) == (modality, n, args.baseline_ref))
                if ours:
                    print(f"{modality:5} N={n:>7,}: working tree's cold working memory "
                          f"{_fmt(_ratio(ours['cold_working'], theirs['cold_working']))} of {args.baseline_ref}'s "
                          f"({_mib(ours['cold_working'])} against {_mib(theirs['cold_working'])} MiB); peak "
                          f"{_fmt(_ratio(ours['peak_after_embedding'], theirs['peak_after_embedding']))}")
    shas = sorted({r["cache_py_sha256"] for r in rows if r["code"] == "working tree"})
    if len(shas) > 1:
        print(f"\nwarning: src/headstart/train/cache.py changed during the run ({', '.join(shas)}); "
              "rows measured different code")
    flat_all = bool(verdicts) and all(verdicts)
    print(f"\nverdict: working memory {'stays' if flat_all else 'does NOT stay'} flat as N grows "
          f"(largest N within {FLAT}x of the smallest, every phase, working tree)")
    load_end = os.getloadavg()
    print(f"load average (1, 5, 15 min): {', '.join(f'{x:.2f}' for x in load_start)} at the start, "
          f"{', '.join(f'{x:.2f}' for x in load_end)} at the end ({os.cpu_count()} cores); "
          f"{(time.time() - started) / 60:.1f} minutes")
    check_quiet([r["other_processes_cpu"] for r in rows])
    _save(args, rows, machine=facts, flat=flat_all, summary=summary, cache_py_sha256=shas, load_start=load_start,
          load_end=load_end, minutes=(time.time() - started) / 60)


def _earlier_rows(args) -> list[dict]:
    path = Path(__file__).parent / "results" / ("memory" + ("_quick" if args.quick else "") + ".json")
    try:
        return json.loads(path.read_text())["rows"]
    except (OSError, ValueError, KeyError):
        return []


def _save(args, rows: list[dict], partial: bool = False, **more) -> None:
    """bench/results/memory.json (memory_quick.json with --quick), rewritten after every N so that a run cut short
    keeps what it measured ("partial": true until the end)."""
    data = {"args": {k: v for k, v in vars(args).items() if k != "child"}, "sizes": SIZES, "flat_factor": FLAT,
            "flat_floor_bytes": FLOOR, "partial": partial, **more, "rows": rows}
    name = "memory" + ("_quick" if args.quick else "")
    if partial:
        with contextlib.redirect_stdout(io.StringIO()):
            write_results(name, data)
    else:
        write_results(name, data)


if __name__ == "__main__":
    main()
