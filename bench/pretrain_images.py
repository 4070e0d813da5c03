"""Pretraining on real images: does a backbone that `headstart pretrain` made transfer better than the
same architecture from random weights? Everything runs through the public API, on real data.

(1) supervised transfer. `headstart.pretrain(method="supervised")` trains timm:resnet10t from random
    weights on the digits 0-4 of a source set (strategy scratch, the default for a :random backbone);
    the target task is the digits 5-9 with 10 labels per class, drawn per seed. On it `headstart.fit`
    trains the pretrained backbone (linear-probe, full, lp-ft: each strategy's defaults) and the same
    architecture from scratch (strategy scratch, its defaults); every arm gets at least 50 optimiser
    steps (--min-steps, as compare does for few-shot subsets). Mean +- std over seeds, and the paired
    difference to scratch. Two sources:
    - mnist (the main one): a stratified subset of the MNIST training images of 0-4 (28 -> 32 px);
      labels per seed from the MNIST training images of 5-9; test: every official MNIST test image of 5-9.
    - digits (the easy case): sklearn's 8x8 digits 0-4 (~900 images); test: the other 5-9 digits.
(2) contrastive. `headstart.pretrain(method="contrastive")` runs SimCLR on a random subset of the
    MNIST training images (builtin:mnist, labels never read, 28 -> 32 px) from random weights. The
    probe task is a stratified subset of the official MNIST test images, split 50/50 per seed into
    train and test; on each split `headstart.fit(strategy="linear-probe")` probes the contrastive
    backbone and the same architecture from random weights (and, for reference, ImageNet's
    EfficientNet-Lite0 at the same 32 px).

    python bench/pretrain_images.py [--quick] [--part supervised|contrastive|all] [--seeds 5]

--part supervised (or contrastive) reruns one part and keeps the other part's figures from the
existing bench/results/pretrain_images.json (the JSON says which part ran when, in "parts_run").
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _common import RESULTS, Stopwatch, check_quiet, cold_cache, machine, print_table, write_image_folder, \
    write_results  # noqa: E402

import headstart  # noqa: E402
from headstart.data import load_examples  # noqa: E402
from headstart.data.splits import few_shot, stratified_split, stratified_subset  # noqa: E402

ARCH = "timm:resnet10t:random"
SIZE = 32
SHOTS = 10
MIN_STEPS = 50


def summarise(per_seed: dict[str, list[float]], baseline: str) -> dict:
    """Mean, std and the paired difference to the baseline arm, per arm."""
    out = {}
    for arm, values in per_seed.items():
        delta = np.array(values) - np.array(per_seed[baseline])
        out[arm] = {"accuracy": values, "mean": float(np.mean(values)), "std": float(np.std(values, ddof=1)) if
                    len(values) > 1 else 0.0, "delta_vs_" + baseline: float(delta.mean()),
                    "delta_std": float(delta.std(ddof=1)) if len(values) > 1 else 0.0,
                    # robust to one collapsed run (early stopping on 1 validation image per class can stop a
                    # run at a near-chance epoch): the median paired difference and the seeds won
                    "delta_median": float(np.median(delta)), "seeds_won": int((delta > 0).sum())}
    return out


def fit_accuracy(train: str, test: str, backbone: str, strategy: str, seed: int, out: Path) -> float:
    run = headstart.fit(train, test, backbone=backbone, strategy=strategy, image_size=SIZE, seed=seed,
                        min_steps=MIN_STEPS, out=out, show_progress=False)
    return run.metrics["accuracy"]


def digits_source_and_target(mnist_source: int) -> Iterator[tuple]:
    """(name, source 0-4, target pool 5-9, fixed test set of 5-9 or None: the pool minus the labelled)."""
    mnist, test = load_examples("builtin:mnist"), load_examples("builtin:mnist:test")
    source = mnist.subset([i for i, label in enumerate(mnist.labels) if label in "01234"])
    yield ("mnist", stratified_subset(source, mnist_source, 0),
           mnist.subset([i for i, label in enumerate(mnist.labels) if label in "56789"]),
           test.subset([i for i, label in enumerate(test.labels) if label in "56789"]))
    digits = load_examples("builtin:digits")
    yield ("digits", digits.subset([i for i, label in enumerate(digits.labels) if label in "01234"]),
           digits.subset([i for i, label in enumerate(digits.labels) if label in "56789"]), None)


def supervised_part(work: Path, seeds: int, epochs: int, source, target, fixed_test, timings: list) -> dict:
    """Pretrain on `source`, then per seed: 10 labels per class of `target`, every arm tested on the same images."""
    with Stopwatch() as watch:
        pretrained = headstart.pretrain(write_image_folder(work / "source", source), method="supervised",
                                        backbone=ARCH, image_size=SIZE, epochs=epochs, out=work / "backbone",
                                        show_progress=False)
    timings.append(watch.others)
    arms = {f"pretrained + {strategy}": (str(pretrained.out), strategy) for strategy in ("linear-probe", "full", "lp-ft")}
    arms["scratch (same architecture)"] = (ARCH, "scratch")
    per_seed: dict[str, list[float]] = {arm: [] for arm in arms}
    shared_test = write_image_folder(work / "test", fixed_test) if fixed_test is not None else None
    for seed in range(seeds):
        train = few_shot(target, SHOTS, seed)
        chosen = set(train.ids)
        test = shared_test or write_image_folder(work / f"s{seed}" / "test", target.subset(
            [i for i, name in enumerate(target.ids) if name not in chosen]))
        train_folder = write_image_folder(work / f"s{seed}" / "train", train)
        for arm, (backbone, strategy) in arms.items():
            accuracy = fit_accuracy(train_folder, test, backbone, strategy, seed, work / f"s{seed}" / strategy)
            per_seed[arm].append(accuracy)
            print(f"  seed {seed}: {arm}: {accuracy:.3f}", flush=True)
    n_test = len(fixed_test) if fixed_test is not None else len(target) - 5 * SHOTS
    return {"source": {"n": len(source), "best_val_accuracy": pretrained.summary["best_val_accuracy"],
                       "best_epoch": pretrained.summary["best_epoch"], "strategy": pretrained.summary["strategy"],
                       "epochs": epochs, "seconds": round(watch.seconds, 1)},
            "target": {"pool": len(target), "labels_per_class": SHOTS, "n_test": n_test,
                       "test": "MNIST test images of 5-9" if fixed_test is not None else "the rest of the pool"},
            "seeds": seeds, "arms": summarise(per_seed, "scratch (same architecture)")}


def supervised_parts(work: Path, args, timings: list) -> dict:
    out = {}
    for name, source, target, fixed_test in digits_source_and_target(args.mnist_source):
        epochs = args.source_epochs if name == "digits" else args.mnist_source_epochs
        print(f"(1) supervised, {name}: pretrain on {len(source)} images of 0-4, transfer to 5-9", flush=True)
        out[name] = supervised_part(work / name, args.seeds, epochs, source, target, fixed_test, timings)
    return out


def contrastive_part(work: Path, seeds: int, images: int, epochs: int, probe_size: int, timings: list) -> dict:
    with Stopwatch() as watch:
        pretrained = headstart.pretrain("builtin:mnist", method="contrastive", backbone=ARCH, image_size=SIZE,
                                        epochs=epochs, batch_size=64, train_size=images,
                                        out=work / "contrastive-backbone", show_progress=False)
    timings.append(watch.others)
    labelled = stratified_subset(load_examples("builtin:mnist:test"), probe_size, 0)
    arms = {"contrastive + linear-probe": str(pretrained.out), "random init + linear-probe": ARCH,
            "ImageNet EfficientNet-Lite0 + linear-probe (reference)": "efficientnet-lite0"}
    per_seed: dict[str, list[float]] = {arm: [] for arm in arms}
    for seed in range(seeds):
        train, test = stratified_split(labelled, 0.5, seed)
        folders = tuple(write_image_folder(work / f"m{seed}" / name, part) for name, part in (("train", train), ("test", test)))
        for n, (arm, backbone) in enumerate(arms.items()):
            accuracy = fit_accuracy(*folders, backbone, "linear-probe", seed, work / f"m{seed}" / str(n))
            per_seed[arm].append(accuracy)
            print(f"  seed {seed}: {arm}: {accuracy:.3f}", flush=True)
    return {"pretraining": {"images": images, "epochs": epochs, "batch_size": 64, "seconds": round(watch.seconds, 1),
                            "history": pretrained.history},
            "probe": {"n": probe_size, "train_per_seed": probe_size // 2}, "seeds": seeds,
            "arms": summarise(per_seed, "random init + linear-probe")}


def table(part: dict) -> list[list]:
    rows = []
    for arm, entry in part["arms"].items():
        key = next(k for k in entry if k.startswith("delta_vs_"))
        robust = f" (median {100 * entry['delta_median']:+.1f}, won {entry['seeds_won']}/{len(entry['accuracy'])})" \
            if "delta_median" in entry else ""
        rows.append([arm, f"{entry['mean']:.3f} +- {entry['std']:.3f}", f"{100 * entry[key]:+.1f} +- "
                     f"{100 * entry['delta_std']:.1f}{robust}"])
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="Fewer seeds, images and epochs: a smoke run.")
    parser.add_argument("--part", choices=("supervised", "contrastive", "all"), default="all",
                        help="Run one part; the other part's figures are kept from the existing results JSON.")
    parser.add_argument("--seeds", type=int, default=5, help="paired seeds per case (the README figures use 5)")
    parser.add_argument("--source-epochs", type=int, default=10, help="supervised on digits 0-4")
    parser.add_argument("--mnist-source", type=int, default=5000, help="supervised: MNIST 0-4 training images")
    parser.add_argument("--mnist-source-epochs", type=int, default=5)
    parser.add_argument("--mnist-images", type=int, default=1000, help="contrastive: unlabelled MNIST images")
    parser.add_argument("--contrastive-epochs", type=int, default=4)
    parser.add_argument("--probe-size", type=int, default=1000)
    args = parser.parse_args()
    if args.quick:
        args.seeds, args.source_epochs, args.mnist_images, args.contrastive_epochs, args.probe_size = 2, 3, 256, 2, 400
        args.mnist_source, args.mnist_source_epochs = 500, 2

    previous = RESULTS / "pretrain_images.json"
    results = json.loads(previous.read_text()) if args.part != "all" and previous.is_file() else {}
    parts_run = results.get("parts_run", {})
    if "contrastive" in results:  # results from before parts were run apart: the seeds were the config's
        results["contrastive"].setdefault("seeds", results.get("config", {}).get("seeds"))
    timings: list[float] = []
    started = time.perf_counter()
    stamp = time.strftime("%Y-%m-%d %H:%M")
    with tempfile.TemporaryDirectory(prefix="headstart-bench-pretrain-") as tmp, cold_cache():
        work = Path(tmp)
        if args.part in ("supervised", "all"):
            results["supervised"], parts_run["supervised"] = supervised_parts(work / "supervised", args, timings), stamp
        if args.part in ("contrastive", "all"):
            print("(2) contrastive: SimCLR on unlabelled MNIST, linear probe on held-out MNIST", flush=True)
            results["contrastive"] = contrastive_part(work / "contrastive", args.seeds, args.mnist_images,
                                                      args.contrastive_epochs, args.probe_size, timings)
            parts_run["contrastive"] = stamp
    header = ["arm", "test accuracy (mean +- std)", "points vs baseline arm (paired)"]
    for name, part in results.get("supervised", {}).items():
        print_table(f"(1) {name} 0-4 -> 5-9, {SHOTS} labels per class, {part['seeds']} seeds, "
                    f"{part['source']['n']} source images, {ARCH} at {SIZE} px", header, table(part))
    if "contrastive" in results:
        print_table(f"(2) SimCLR on unlabelled MNIST; linear probe (from {parts_run.get('contrastive', 'an earlier run')})",
                    header, table(results["contrastive"]))
    check_quiet(timings)
    config = {**results.get("config", {}), **{k: v for k, v in vars(args).items() if k != "part"}} \
        if args.part != "all" else vars(args)
    write_results("pretrain_images", {
        **results, "config": config, "arch": ARCH, "image_size": SIZE, "machine": machine(), "parts_run": parts_run,
        "seconds": round(time.perf_counter() - started, 1), "other_processes_cpu_share": max(timings, default=0.0)})


if __name__ == "__main__":
    main()
