"""Linear probe on real reviews: headstart against the tutorial recipe, same data, same run.

Data: a stratified subset of builtin:rotten-tomatoes of --train + --test reviews (default 2,000 + 500),
split into exactly --train training and --test test reviews by `stratified_split`; both sides see the same
training and the same test reviews.

headstart: `headstart.fit(strategy="linear-probe", epochs=10, batch_size=--batch-size)` (32, fit's default) on
the training part (as a CSV), tested on the test part. The frozen MiniLM embeds the examples once (bf16 where
the CPU has it) and the head trains on cached features (AdamW, warm-up + cosine); fit holds 10% of the training
reviews out for validation and keeps the best epoch, so the head sees 90% of them (1,800 of 2,000). The time is
fit's wall clock from the CSV paths to the saved run directory (load data and backbone, embed, train, predict the
test set, save model and plots), with an empty feature cache on disk and in memory: a cold run.
Further --lr values rerun fit on the then-warm cache: their accuracy counts, their time does not.

Tutorial: load the same frozen MiniLM, then every epoch run it forward (fp32, no_grad) on each batch of
--tutorial-batch-size (4) reviews and train a new nn.Linear head with SGD (momentum 0.9, --tutorial-lr 0.01: the
0.1 it used at batch 32, scaled down with the batch; at batch 4, 0.1 costs it accuracy), on all --train training
reviews for --epochs (10) epochs; predict the test set (batches of 64). Its time runs from loading the backbone
to the last test prediction.

Target (the issue): the tutorial's time / headstart's cold time >= 20x, at equal or better test accuracy.

    python bench/linear_probe.py [--train 2000] [--test 500] [--epochs 10] [--lr 0.01 0.03] [--quick]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).parent))
from _common import Stopwatch, check_quiet, cold_cache, machine, print_table, write_csv, write_results  # noqa: E402

import headstart  # noqa: E402
from headstart import backbones  # noqa: E402
from headstart.config import BackboneSpec  # noqa: E402
from headstart.data import load_examples  # noqa: E402
from headstart.data.splits import stratified_split, stratified_subset  # noqa: E402
from headstart.precision import resolve_precision  # noqa: E402


def accuracy(predicted: list[str], truth: list[str]) -> float:
    return sum(p == t for p, t in zip(predicted, truth)) / len(truth)


def tutorial(train, test, args) -> float:
    """Test accuracy of the textbook loop: the frozen encoder runs forward every epoch."""
    backbone = backbones.load(BackboneSpec(name="minilm-l6", max_length=args.max_length)).eval()
    classes = sorted(set(train.labels))
    y = torch.tensor([classes.index(label) for label in train.labels])
    torch.manual_seed(args.seed)
    head = torch.nn.Linear(backbone.dim, len(classes))
    optimizer = torch.optim.SGD(head.parameters(), lr=args.tutorial_lr, momentum=0.9)
    generator = torch.Generator().manual_seed(args.seed)
    for _ in range(args.epochs):
        for index in torch.randperm(len(train), generator=generator).split(args.tutorial_batch_size):
            with torch.no_grad():
                features = backbone(backbone.preprocess([train.inputs[i] for i in index]))
            loss = F.cross_entropy(head(features), y[index])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    predicted = []
    with torch.no_grad():
        for start in range(0, len(test), 64):
            logits = head(backbone(backbone.preprocess(test.inputs[start:start + 64])))
            predicted += [classes[int(i)] for i in logits.argmax(-1)]
    return accuracy(predicted, test.labels)


def main() -> None:
    parser = argparse.ArgumentParser(description="headstart's linear probe against the tutorial recipe")
    parser.add_argument("--train", type=int, default=2000, help="training reviews of builtin:rotten-tomatoes")
    parser.add_argument("--test", type=int, default=500, help="test reviews (others, from the same stratified subset)")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=32, help="headstart's batch (fit's default)")
    parser.add_argument("--tutorial-batch-size", type=int, default=4, help="the tutorial's batch")
    parser.add_argument("--max-length", type=int, default=64, help="tokens per review (the longest are ~70)")
    parser.add_argument("--lr", type=float, nargs="+", default=[None],
                        help="headstart head learning rate(s); the first is timed cold; default: the strategy's own")
    parser.add_argument("--tutorial-lr", type=float, default=0.01, help="the tutorial's SGD learning rate")
    parser.add_argument("--precision", choices=["bf16", "fp32"], default=None,
                        help="headstart's arithmetic; default: bf16 where the CPU has it (the tutorial is always fp32)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="a 240 + 60-review, 2-epoch smoke run")
    args = parser.parse_args()
    if args.quick:
        args.train, args.test, args.epochs = 240, 60, 2
    precision = resolve_precision(args.precision)
    facts = machine()

    data = stratified_subset(load_examples("builtin:rotten-tomatoes"), args.train + args.test, seed=args.seed)
    train, test = stratified_split(data, args.test / len(data), seed=args.seed)
    probes = []
    with tempfile.TemporaryDirectory(prefix="bench-lp-") as tmp, cold_cache():
        train_csv, test_csv = write_csv(Path(tmp) / "train.csv", train), write_csv(Path(tmp) / "test.csv", test)
        for i, lr in enumerate(args.lr):
            with Stopwatch() as clock:
                run = headstart.fit(str(train_csv), str(test_csv), backbone="minilm-l6", strategy="linear-probe",
                                    epochs=args.epochs, lr=lr, batch_size=args.batch_size,
                                    max_length=args.max_length, precision=precision, seed=args.seed,
                                    out=Path(tmp) / f"run-{i}", show_progress=False)
            probes.append({"lr": run.plan.phases[0].lr, "seconds": clock.seconds, "cold": i == 0,
                           "other_processes_cpu": clock.others,
                           "engine_seconds": run.history.seconds, "accuracy": run.metrics["accuracy"],
                           "best_epoch": run.history.best_epoch, "n_train": run.metrics["n_train"],
                           "n_val": run.metrics["n_val"]})
    with Stopwatch() as clock:
        their_accuracy = tutorial(train, test, args)
    theirs = clock.seconds

    ours = probes[0]
    rows = [["headstart linear-probe", f"{p['lr']:g}", f"{p['seconds']:.1f}" + ("" if p["cold"] else " (warm)"),
             f"{p['accuracy']:.3f}", precision, f"{p['n_train']} (+{p['n_val']} val)",
             f"{p['other_processes_cpu']:.0%}"] for p in probes]
    rows.append([f"tutorial (SGD, forward each epoch, batch {args.tutorial_batch_size})", f"{args.tutorial_lr:g}",
                 f"{theirs:.1f}", f"{their_accuracy:.3f}", "fp32", str(len(train)), f"{clock.others:.0%}"])
    print_table(f"linear probe of minilm-l6, {args.epochs} epochs, {len(test)} test reviews (headstart batch "
                f"{args.batch_size})",
                ["recipe", "lr", "seconds", "test accuracy", "precision", "trained on", "CPU used by others"], rows)
    print(f"\nspeed-up (tutorial / headstart, cold): {theirs / ours['seconds']:.1f}x (target >= 20x); of headstart's "
          f"{ours['seconds']:.1f} s, {ours['engine_seconds']:.1f} s are the engine (embedding + head epochs)")
    print(f"accuracy, headstart - tutorial: {100 * (ours['accuracy'] - their_accuracy):+.1f} points (target >= 0)")
    check_quiet([p["other_processes_cpu"] for p in probes] + [clock.others])
    write_results("linear_probe", {
        "args": vars(args), "machine": facts, "n_train": len(train), "n_test": len(test),
        "headstart": probes, "tutorial": {"seconds": theirs, "accuracy": their_accuracy, "lr": args.tutorial_lr,
                                          "precision": "fp32", "other_processes_cpu": clock.others},
        "speedup": theirs / ours["seconds"], "target_speedup": 20,
        "accuracy_difference": ours["accuracy"] - their_accuracy,
    })


if __name__ == "__main__":
    main()
