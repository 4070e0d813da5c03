"""Pretraining on real images: does a backbone that `headstart pretrain` made transfer better than the
same architecture from random weights? Everything runs through the public API, on real data.

(1) supervised transfer. `headstart.pretrain(method="supervised")` trains timm:resnet10t from random
    weights on digits 0-4 (builtin:digits, ~900 images at 32 px; strategy scratch, the default for a
    :random backbone). The target task is digits 5-9 with 10 labels per class: per seed, 10 images of
    each class are drawn to train on and all the other 5-9 digits are the test set. On that split
    `headstart.fit` trains the pretrained backbone (linear-probe, and full fine-tuning) and the same
    architecture from scratch (strategy scratch); every arm gets at least 50 optimiser steps
    (--min-steps, as compare does for few-shot subsets). Mean +- std over seeds, and the paired
    difference to scratch.
(2) contrastive. `headstart.pretrain(method="contrastive")` runs SimCLR on a random subset of the
    MNIST training images (builtin:mnist, labels never read, 28 -> 32 px) from random weights. The
    probe task is a stratified subset of the official MNIST test images, split 50/50 per seed into
    train and test; on each split `headstart.fit(strategy="linear-probe")` probes the contrastive
    backbone and the same architecture from random weights (and, for reference, ImageNet's
    EfficientNet-Lite0 at the same 32 px).

    python bench/pretrain_images.py [--quick] [--seeds 3] [--mnist-images 1000] [--contrastive-epochs 4]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _common import Stopwatch, check_quiet, cold_cache, machine, print_table, write_image_folder, write_results  # noqa: E402

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
                    "delta_std": float(delta.std(ddof=1)) if len(values) > 1 else 0.0}
    return out


def fit_accuracy(train: str, test: str, backbone: str, strategy: str, seed: int, out: Path) -> float:
    run = headstart.fit(train, test, backbone=backbone, strategy=strategy, image_size=SIZE, seed=seed,
                        min_steps=MIN_STEPS, out=out, show_progress=False)
    return run.metrics["accuracy"]


def supervised_part(work: Path, seeds: int, epochs: int, timings: list) -> dict:
    digits = load_examples("builtin:digits")
    source = digits.subset([i for i, label in enumerate(digits.labels) if label in "01234"])
    target = digits.subset([i for i, label in enumerate(digits.labels) if label in "56789"])
    with Stopwatch() as watch:
        pretrained = headstart.pretrain(write_image_folder(work / "digits-0-4", source), method="supervised", backbone=ARCH,
                                        image_size=SIZE, epochs=epochs, out=work / "supervised-backbone",
                                        show_progress=False)
    timings.append(watch.others)
    arms = {"pretrained + linear-probe": (str(pretrained.out), "linear-probe"),
            "pretrained + full": (str(pretrained.out), "full"),
            "scratch (same architecture)": (ARCH, "scratch")}
    per_seed: dict[str, list[float]] = {arm: [] for arm in arms}
    for seed in range(seeds):
        train = few_shot(target, SHOTS, seed)
        chosen = set(train.ids)
        test = target.subset([i for i, name in enumerate(target.ids) if name not in chosen])
        folders = tuple(write_image_folder(work / f"s{seed}" / name, part) for name, part in (("train", train), ("test", test)))
        for arm, (backbone, strategy) in arms.items():
            accuracy = fit_accuracy(*folders, backbone, strategy, seed, work / f"s{seed}" / strategy)
            per_seed[arm].append(accuracy)
            print(f"  seed {seed}: {arm}: {accuracy:.3f}", flush=True)
    return {"source": {"n": len(source), "best_val_accuracy": pretrained.summary["best_val_accuracy"],
                       "strategy": pretrained.summary["strategy"], "epochs": epochs, "seconds": round(watch.seconds, 1)},
            "target": {"n": len(target), "labels_per_class": SHOTS, "n_test_per_seed": len(target) - 5 * SHOTS},
            "arms": summarise(per_seed, "scratch (same architecture)")}


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
            "probe": {"n": probe_size, "train_per_seed": probe_size // 2},
            "arms": summarise(per_seed, "random init + linear-probe")}


def table(part: dict) -> list[list]:
    rows = []
    for arm, entry in part["arms"].items():
        key = next(k for k in entry if k.startswith("delta_vs_"))
        rows.append([arm, f"{entry['mean']:.3f} +- {entry['std']:.3f}", f"{100 * entry[key]:+.1f} +- "
                     f"{100 * entry['delta_std']:.1f}"])
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="Fewer seeds, images and epochs: a smoke run.")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--source-epochs", type=int, default=10)
    parser.add_argument("--mnist-images", type=int, default=1000)
    parser.add_argument("--contrastive-epochs", type=int, default=4)
    parser.add_argument("--probe-size", type=int, default=1000)
    args = parser.parse_args()
    if args.quick:
        args.seeds, args.source_epochs, args.mnist_images, args.contrastive_epochs, args.probe_size = 2, 3, 256, 2, 400

    timings: list[float] = []
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="headstart-bench-pretrain-") as tmp, cold_cache():
        work = Path(tmp)
        print("(1) supervised: pretrain on digits 0-4, transfer to digits 5-9", flush=True)
        supervised = supervised_part(work / "supervised", args.seeds, args.source_epochs, timings)
        print("(2) contrastive: SimCLR on unlabelled MNIST, linear probe on held-out MNIST", flush=True)
        contrastive = contrastive_part(work / "contrastive", args.seeds, args.mnist_images, args.contrastive_epochs,
                                       args.probe_size, timings)
    header = ["arm", "test accuracy (mean +- std)", "points vs baseline arm (paired)"]
    print_table(f"(1) digits 0-4 -> 5-9, {SHOTS} labels per class, {args.seeds} seeds, {ARCH} at {SIZE} px",
                header, table(supervised))
    print_table(f"(2) SimCLR on {args.mnist_images} unlabelled MNIST images, {args.contrastive_epochs} epochs; "
                f"linear probe on {args.probe_size // 2} labelled, {args.seeds} seeds", header, table(contrastive))
    check_quiet(timings)
    write_results("pretrain_images", {
        "config": vars(args), "arch": ARCH, "image_size": SIZE, "machine": machine(),
        "supervised": supervised, "contrastive": contrastive, "seconds": round(time.perf_counter() - started, 1),
        "other_processes_cpu_share": max(timings, default=0.0)})


if __name__ == "__main__":
    main()
