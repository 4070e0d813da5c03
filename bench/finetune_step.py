"""Full fine-tuning throughput: headstart's engine against a bare PyTorch loop, same model, same batch.

For each model (MiniLM on 32 Rotten Tomatoes reviews at --max-length 64; EfficientNet-Lite0 on 32
scikit-learn digits at --image-size 128), both sides train a fresh copy of the same pretrained
model + head, every parameter, with AdamW (head lr 1e-3, backbone 1e-4, weight decay 0.01),
cross-entropy and the same precision (bf16 autocast where the CPU has it), on one fixed batch, for
1 warm-up epoch + --epochs measured epochs of --steps steps each; every epoch ends with a validation
pass over --val of the examples.

headstart: `headstart.train.run(model, TaskData, plan("full"), TrainSpec(min_steps=...))`, the engine
code path as fit uses it (Accelerate, DataLoader with tokenising / resizing collate every step,
per-group learning rates, warm-up + cosine schedule, history, best-weights bookkeeping). The train
set is the one batch; min_steps makes each epoch pass over it --steps times. A forward hook checks
that exactly that many training steps ran.
Bare: the same steps written out: the batch is preprocessed once, then forward, backward, step; the
same validation pass after each epoch; dropout on and BatchNorm statistics frozen, as in the plan.

Two figures per model, each the median over --repeats runs that alternate which side goes first:
- steady: examples/s over the measured epochs, from the History's per-epoch seconds (training steps
  plus that epoch's validation) and the same span of the bare loop; the warm-up epoch is left out.
- end-to-end: examples/s over the wall time of the whole `run` call (Accelerate set-up, validation
  before training, copies of the best weights, restoring them) against the whole bare loop,
  warm-up epoch included on both sides.
Model loading is outside both timings.

    python bench/finetune_step.py [--models minilm-l6 efficientnet-lite0] [--steps 10] [--epochs 3] [--repeats 3] [--quick]
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
from torch.nn.modules.batchnorm import _BatchNorm

sys.path.insert(0, str(Path(__file__).parent))
from _common import Stopwatch, check_quiet, machine, print_table, write_results  # noqa: E402

from headstart import backbones, strategies  # noqa: E402
from headstart.config import BackboneSpec, TrainSpec  # noqa: E402
from headstart.data import TaskData, load_examples  # noqa: E402
from headstart.model import TransferModel, autocast  # noqa: E402
from headstart.precision import resolve_precision  # noqa: E402
from headstart.tasks import ClassificationTask  # noqa: E402
from headstart.train import run  # noqa: E402

DATA = {"minilm-l6": "builtin:rotten-tomatoes", "efficientnet-lite0": "builtin:digits"}


def task(name: str, args) -> TaskData:
    examples = load_examples(DATA[name])
    batch = examples.subset(np.random.default_rng(args.seed).permutation(len(examples))[:args.batch_size])
    val = batch.subset(range(min(args.val, len(batch))))
    return TaskData(batch, val, val, ClassificationTask.from_labels(batch.labels), batch.modality)


def fresh_model(name: str, data: TaskData, args) -> TransferModel:
    spec = BackboneSpec(name=name, max_length=args.max_length, image_size=args.image_size if "efficientnet" in name else None)
    backbone = backbones.load(spec)
    torch.manual_seed(args.seed)
    return TransferModel(backbone, data.task)


def headstart_side(name: str, data: TaskData, args, precision: str) -> tuple[float, float]:
    """(seconds of the measured epochs, seconds of the whole run) through the engine."""
    model = fresh_model(name, data, args)
    epochs = 1 + args.epochs
    steps = []
    model.head.register_forward_hook(lambda module, *_: steps.append(1) if module.training else None)
    spec = TrainSpec(batch_size=args.batch_size, seed=args.seed, patience=epochs + 1, min_steps=epochs * args.steps)
    started = time.perf_counter()
    history = run(model, data, strategies.plan("full", epochs=epochs), spec, precision, show_progress=False)
    total = time.perf_counter() - started
    seconds = [r.seconds for r in history.records if r.epoch > 0]
    assert len(seconds) == epochs and len(steps) == epochs * args.steps, (len(seconds), len(steps))
    return sum(seconds[1:]), total


def bare_side(name: str, data: TaskData, args, precision: str) -> tuple[float, float]:
    """The same work as a plain loop: (seconds of the measured epochs, seconds of the whole loop)."""
    model = fresh_model(name, data, args)
    batch, y = model.backbone.preprocess(data.train.inputs), torch.from_numpy(data.targets(data.train))
    val, y_val = model.backbone.preprocess(data.val.inputs), torch.from_numpy(data.targets(data.val))
    optimizer = torch.optim.AdamW([{"params": model.head.parameters(), "lr": 1e-3},
                                   {"params": model.backbone.parameters(), "lr": 1e-4}], weight_decay=0.01)
    seconds = []
    started = time.perf_counter()
    for _ in range(1 + args.epochs):
        t0 = time.perf_counter()
        for module in model.modules():  # train mode by hand: dropout on, pretrained BatchNorm statistics kept
            module.training = not isinstance(module, _BatchNorm)
        for _ in range(args.steps):
            with autocast(precision):
                logits = model(batch)
            loss = F.cross_entropy(logits.float(), y)
            loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            loss.item()
        model.eval()
        with torch.no_grad(), autocast(precision):
            logits = model(val).float()
        (logits.argmax(-1) == y_val).float().mean().item(), F.cross_entropy(logits, y_val).item()
        seconds.append(time.perf_counter() - t0)
    return sum(seconds[1:]), time.perf_counter() - started


def compare(name: str, args, precision: str) -> dict:
    """Both sides on one model, --repeats times each, alternating which goes first; medians and their ratio."""
    data = task(name, args)
    seconds, others = {"headstart": [], "bare": []}, {"headstart": [], "bare": []}
    for repeat in range(args.repeats):  # alternate, so that drift and warm caches hit both sides alike
        sides = [("headstart", headstart_side), ("bare", bare_side)]
        for side, measure in sides if repeat % 2 == 0 else sides[::-1]:
            with Stopwatch() as clock:
                seconds[side].append(measure(name, data, args, precision))
            others[side].append(clock.others)
    examples = {"steady": args.batch_size * args.steps * args.epochs,
                "end_to_end": args.batch_size * args.steps * (1 + args.epochs)}
    rate = {side: {kind: examples[kind] / statistics.median(run[i] for run in runs)
                   for i, kind in enumerate(examples)} for side, runs in seconds.items()}
    ratio = {kind: rate["headstart"][kind] / rate["bare"][kind] for kind in examples}
    return {"seconds": seconds, "examples_per_second": rate, "ratio": ratio, "other_processes_cpu": others}


def main() -> None:
    parser = argparse.ArgumentParser(description="headstart's fine-tuning throughput against a bare PyTorch loop")
    parser.add_argument("--models", nargs="+", choices=sorted(DATA), default=["minilm-l6", "efficientnet-lite0"])
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--steps", type=int, default=10, help="training steps per epoch")
    parser.add_argument("--epochs", type=int, default=3, help="measured epochs, after one warm-up epoch")
    parser.add_argument("--repeats", type=int, default=3, help="runs of each side, alternating which goes first")
    parser.add_argument("--val", type=int, default=8, help="examples of the batch validated after each epoch")
    parser.add_argument("--max-length", type=int, default=64)
    parser.add_argument("--image-size", type=int, default=128)
    parser.add_argument("--precision", choices=["bf16", "fp32"], default=None, help="default: bf16 where the CPU has it")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="a tiny smoke run")
    args = parser.parse_args()
    if args.quick:
        args.batch_size, args.steps, args.epochs, args.repeats, args.val = 8, 2, 1, 1, 4
        args.max_length, args.image_size = 32, 64
    precision = resolve_precision(args.precision)
    facts = machine()

    results = {name: compare(name, args, precision) for name in args.models}
    rows = []
    for name, result in results.items():
        rate, ratio, others = result["examples_per_second"], result["ratio"], result["other_processes_cpu"]
        for side in ("headstart", "bare"):
            rows.append([name, side, f"{rate[side]['steady']:.1f}", f"{rate[side]['end_to_end']:.1f}",
                         ", ".join(f"{s:.1f}" for s, _ in result["seconds"][side]), f"{max(others[side]):.0%}"])
        rows.append([name, "headstart / bare", f"{ratio['steady']:.3f}", f"{ratio['end_to_end']:.3f}", "", ""])

    print_table(f"full fine-tuning, batch {args.batch_size}, {args.steps} steps x (1 warm-up + {args.epochs}) epochs, "
                f"{precision}, median of {args.repeats}", ["model", "loop", "steady ex/s", "end-to-end ex/s",
                                                           "steady seconds (each repeat)",
                                                           "CPU used by others (max)"], rows)
    print("\ntarget: headstart / bare >= 0.95")
    check_quiet([x for r in results.values() for side in r["other_processes_cpu"].values() for x in side])
    write_results("finetune_step", {"args": vars(args), "precision": precision, "machine": facts, "models": results})


if __name__ == "__main__":
    main()
