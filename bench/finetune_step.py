"""Full fine-tuning throughput: headstart's engine against a bare PyTorch loop, same model, same batches.

Both sides train MiniLM (all groups, AdamW, cross-entropy, bf16 autocast where the CPU has it, fp32
otherwise) on the same examples with the same batch size for the same number of epochs.
headstart: `train.run` with the `full` plan (Accelerate, per-group learning rates, warm-up + cosine
schedule, progress, history); its time is the sum of the History's per-epoch seconds, which cover
the training steps and one validation pass per epoch. The bare loop does the same steps plus the
same validation pass over the same examples, so both sides do equal work. The two sides alternate
`--repeats` times and the ratio of the medians is reported.

    python bench/finetune_step.py [--train 320] [--epochs 2] [--repeats 3] [--quick]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).parent))
from _common import print_table, write_results  # noqa: E402

from headstart import backbones, strategies  # noqa: E402
from headstart.config import BackboneSpec, TrainSpec  # noqa: E402
from headstart.data import TaskData, load_examples  # noqa: E402
from headstart.data.splits import stratified_subset  # noqa: E402
from headstart.model import TransferModel, autocast  # noqa: E402
from headstart.precision import resolve_precision  # noqa: E402
from headstart.train import run  # noqa: E402


def fresh_model(classes, max_length):
    torch.manual_seed(0)
    return TransferModel(backbones.load(BackboneSpec(name="minilm-l6", max_length=max_length)), classes)


def headstart_seconds(data: TaskData, epochs: int, batch_size: int, precision: str, max_length: int) -> float:
    model = fresh_model(data.classes, max_length)
    plan = strategies.plan("full", epochs=epochs)
    history = run(model, data, plan, TrainSpec(batch_size=batch_size, patience=epochs + 1), precision,
                  show_progress=False)
    return sum(r.seconds for r in history.records if r.epoch > 0)


def bare_seconds(data: TaskData, epochs: int, batch_size: int, precision: str, max_length: int) -> float:
    model = fresh_model(data.classes, max_length)
    backbone = model.backbone
    y, y_val = torch.from_numpy(data.targets(data.train)), torch.from_numpy(data.targets(data.val))
    optimizer = torch.optim.AdamW([{"params": model.head.parameters(), "lr": 1e-3},
                                   {"params": backbone.parameters(), "lr": 1e-4}], weight_decay=0.01)
    generator = torch.Generator().manual_seed(0)
    started = time.perf_counter()
    for _ in range(epochs):
        model.train()
        for index in torch.randperm(len(data.train), generator=generator).split(batch_size):
            with autocast(precision):
                logits = model(backbone.preprocess([data.train.inputs[i] for i in index]))
            loss = F.cross_entropy(logits.float(), y[index])
            loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
        model.eval()
        with torch.no_grad(), autocast(precision):
            logits = torch.cat([model(backbone.preprocess(data.val.inputs[s:s + 64])).float()
                                for s in range(0, len(data.val), 64)])
        F.cross_entropy(logits, y_val), (logits.argmax(-1) == y_val).float().mean()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description="headstart's fine-tuning throughput against a bare PyTorch loop")
    parser.add_argument("--train", type=int, default=320, help="training reviews (builtin:rotten-tomatoes)")
    parser.add_argument("--val", type=int, default=64)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--max-length", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="a tiny smoke run")
    args = parser.parse_args()
    if args.quick:
        args.train, args.val, args.epochs, args.repeats = 64, 32, 1, 1
    precision = resolve_precision(None)

    reviews = stratified_subset(load_examples("builtin:rotten-tomatoes"), args.train + args.val, seed=0)
    order = np.random.default_rng(0).permutation(len(reviews))
    train, val = reviews.subset(order[:args.train]), reviews.subset(order[args.train:])
    data = TaskData(train, val, val, sorted(set(reviews.labels)), "text")

    ours, bare = [], []
    for _ in range(args.repeats):  # alternate, so that machine noise hits both sides alike
        ours.append(headstart_seconds(data, args.epochs, args.batch_size, precision, args.max_length))
        bare.append(bare_seconds(data, args.epochs, args.batch_size, precision, args.max_length))
    examples = args.epochs * (args.train + args.val)
    ours_rate, bare_rate = examples / statistics.median(ours), examples / statistics.median(bare)
    print_table(f"full fine-tuning of minilm-l6, {args.train} examples x {args.epochs} epochs, batch "
                f"{args.batch_size}, {precision}, median of {args.repeats}",
                ["loop", "examples/s", "seconds (each repeat)"],
                [["headstart engine", f"{ours_rate:.1f}", ", ".join(f"{s:.1f}" for s in ours)],
                 ["bare PyTorch", f"{bare_rate:.1f}", ", ".join(f"{s:.1f}" for s in bare)]])
    print(f"\nheadstart / bare throughput: {ours_rate / bare_rate:.3f} (target >= 0.95)")
    write_results("finetune_step", {
        "train": args.train, "val": args.val, "epochs": args.epochs, "batch_size": args.batch_size,
        "precision": precision, "headstart_seconds": ours, "bare_seconds": bare,
        "headstart_examples_per_second": ours_rate, "bare_examples_per_second": bare_rate,
        "ratio": ours_rate / bare_rate,
    })


if __name__ == "__main__":
    main()
