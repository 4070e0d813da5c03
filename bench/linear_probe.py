"""Linear probe: headstart against the tutorial recipe, same data, same run.

headstart: `fit(strategy="linear-probe", epochs=10)`: the frozen MiniLM embeds train + validation once
(bf16 where the CPU has it), the head trains 10 epochs on cached features; test predictions go
through the whole model. Timed cold: an empty feature cache.
Tutorial: the same frozen MiniLM run forward (fp32, no_grad) on every batch of every epoch, a new
nn.Linear head, SGD with momentum, 10 epochs, the same training examples, the same test set.

    python bench/linear_probe.py [--size 2000] [--epochs 10] [--quick]
"""

from __future__ import annotations

import argparse
import csv
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).parent))
from _common import cold_cache, print_table, write_results  # noqa: E402

import headstart  # noqa: E402
from headstart import backbones  # noqa: E402
from headstart.config import BackboneSpec  # noqa: E402
from headstart.data import load_examples  # noqa: E402
from headstart.data.splits import stratified_split, stratified_subset  # noqa: E402


def write_csv(path: Path, examples) -> None:
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["text", "label"])
        writer.writerows(zip(examples.inputs, examples.labels))


def tutorial(train, test, epochs: int, batch_size: int, max_length: int) -> tuple[float, float]:
    backbone = backbones.load(BackboneSpec(name="minilm-l6", max_length=max_length)).eval()
    classes = sorted(set(train.labels))
    y = torch.tensor([classes.index(label) for label in train.labels])
    head = torch.nn.Linear(backbone.dim, len(classes))
    optimizer = torch.optim.SGD(head.parameters(), lr=0.1, momentum=0.9)
    generator = torch.Generator().manual_seed(0)
    started = time.perf_counter()
    for _ in range(epochs):
        for index in torch.randperm(len(train), generator=generator).split(batch_size):
            with torch.no_grad():
                features = backbone(backbone.preprocess([train.inputs[i] for i in index]))
            loss = F.cross_entropy(head(features), y[index])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    with torch.no_grad():
        predicted = [classes[int(i)] for start in range(0, len(test), 64)
                     for i in head(backbone(backbone.preprocess(test.inputs[start:start + 64]))).argmax(-1)]
    seconds = time.perf_counter() - started
    return seconds, sum(p == t for p, t in zip(predicted, test.labels)) / len(test)


def main() -> None:
    parser = argparse.ArgumentParser(description="headstart's linear probe against the tutorial recipe")
    parser.add_argument("--size", type=int, default=2000, help="examples of builtin:rotten-tomatoes (80%% train, 20%% test)")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--max-length", type=int, default=64)
    parser.add_argument("--quick", action="store_true", help="a 300-example smoke run")
    args = parser.parse_args()
    size = 300 if args.quick else args.size

    data = stratified_subset(load_examples("builtin:rotten-tomatoes"), size, seed=0)
    train, test = stratified_split(data, 0.2, seed=0)
    folder = Path(tempfile.mkdtemp(prefix="bench-lp-"))
    write_csv(folder / "train.csv", train)
    write_csv(folder / "test.csv", test)

    cold_cache()
    started = time.perf_counter()
    run = headstart.fit(str(folder / "train.csv"), str(folder / "test.csv"), backbone="minilm-l6",
                        strategy="linear-probe", epochs=args.epochs, batch_size=args.batch_size,
                        max_length=args.max_length, out=folder / "run", show_progress=False)
    ours = time.perf_counter() - started
    theirs, their_accuracy = tutorial(train, test, args.epochs, args.batch_size, args.max_length)

    rows = [["headstart linear-probe", f"{ours:.1f}", f"{run.metrics['accuracy']:.3f}", run.spec.train.precision],
            ["tutorial recipe", f"{theirs:.1f}", f"{their_accuracy:.3f}", "fp32"]]
    print_table(f"linear probe, {args.epochs} epochs, {len(train)} train / {len(test)} test reviews",
                ["recipe", "seconds", "test accuracy", "precision"], rows)
    print(f"\nspeed-up: {theirs / ours:.1f}x (target >= 8x); accuracy difference: "
          f"{100 * (run.metrics['accuracy'] - their_accuracy):+.1f} points (target >= 0)")
    write_results("linear_probe", {
        "size": size, "epochs": args.epochs, "n_train": len(train), "n_test": len(test),
        "headstart": {"seconds": ours, "accuracy": run.metrics["accuracy"], "precision": run.spec.train.precision},
        "tutorial": {"seconds": theirs, "accuracy": their_accuracy, "precision": "fp32"},
        "speedup": theirs / ours,
    })


if __name__ == "__main__":
    main()
