"""Speed: the frozen-prefix cache, length-aware text batches and bf16, each against a baseline timed in the same run.

Every figure is a ratio of two timings taken in this process, side by side: each side runs --repeats times
(default 3), the order of the sides alternating (rotating, for three) from one repeat to the next so that drift
and warm caches hit them alike, and the figure is the median. Each timed block also records this process's CPU
seconds (os.times: user + system) and the share of the machine's CPU that other processes used meanwhile
(Stopwatch); seconds are reported to explain the ratios, never claimed on their own. Model loading, data loading
and test predictions are outside every timing. --parts picks the parts:

prefix (freeze:K epoch cost). `headstart.train.run(model, TaskData, plan("freeze:K", epochs=--prefix-epochs),
TrainSpec(batch_size=32, patience > epochs))` with the frozen-prefix cache (HEADSTART_PREFIX_MAX unset) against
today's path (HEADSTART_PREFIX_MAX=0: the K frozen groups run on every batch), each run from the same pretrained
weights and seeded head, with an empty feature cache on disk and in memory (a fresh HEADSTART_CACHE), so the cached
side pays its embedding. MiniLM (7 groups: embeddings + 6 layers) on builtin:rotten-tomatoes at --prefix-max-length 64
for K in --text-k (3 5); EfficientNet-Lite0 (9 groups) at --prefix-image-size 64 on --image-data (builtin:digits)
for K in --image-k (4 7); --prefix-train training, --prefix-val validation and --prefix-test test examples
(1,000 / 100 / 500, a stratified subset). Figures, from History.records[i].seconds (training steps plus that
epoch's validation pass): "epoch" is the mean over the training epochs after the first (records[2:]; records[0] is
the validation before training); the first training epoch is reported apart; "set-up" is the time from the call
to the start of training minus epoch 0's validation: it holds the prefix check and the one-off embedding of the
prefix, which the engine does before epoch 0, outside every record. Target (the issue): epoch ratio cached / today
<= (1 - K / groups) + 0.1, at the same test accuracy (within two standard errors of a difference of two
accuracies on the test set). The run's notes are checked to say which path each side took. Beside it, the frozen
groups' share s of a forward pass (prefix vs whole backbone on 64 training examples, median of 7) and the epoch
ratio it allows if a backward pass costs two forwards and nothing else counts, 3(1 - s) / (3 - 2s): the trained
groups run forward and backward on both sides, so the issue's (1 - K / groups) + 0.1 can lie below it.

embed (embedding throughput). `headstart.train.cache.embed(backbone, texts, 64, precision, show_progress=False,
fingerprint=...)` (fingerprint computed beforehand and reported apart) with an empty cache (cold: it hashes each
text, runs texts longest first, and writes the features to the disk cache, all part of what a user pays) against
a bare loop over the same loaded MiniLM (--embed-max-length 128) and the same texts: the tokenizer on batches of 64
in the given order (padding=True, truncation, max_length), torch.no_grad + torch.autocast("cpu", bfloat16) (at
bf16), model(**batch).last_hidden_state mean-pooled over the attention mask. The bare loop in data order pads
each batch to its longest text and pays for that padding; a second bare loop sorted longest first (by characters,
as headstart sorts) shows what part of the difference is length ordering. --embed-texts (2,000) texts of each of
--embed-data (builtin:rotten-tomatoes, and builtin:spam's e-mails, long and mixed in length, when installed), a
seeded random sample in random order. One untimed pass of the sorted bare loop comes first, so that no side pays
for the kernels' first use of each padded length. Target: headstart >= 0.9x the bare loop's texts/s.

finetune (full fine-tuning throughput). headstart `full` on MiniLM (`run`, TrainSpec(batch_size=32), --ft-epochs
epochs, --precision: bf16 by default, length-grouped batches, warm-up + cosine, best-weights copies) against bare
PyTorch loops from the same pretrained weights and the same seeded head: AdamW (head lr 1e-3, body 1e-4, weight
decay 0.01, constant), batches of 32 drawn at random (a seeded permutation) and padded to their longest text,
dropout on, the same number of steps; "bare fp32" without autocast, "bare bf16" under bf16 autocast, so that the
two sources of speed (bf16; length grouping and the engine) are separated. --ft-train / --ft-val / --ft-test
(1,000 / 100 / 500) rotten-tomatoes reviews at --ft-max-length 128. Every side validates on the same validation
reviews after each epoch (headstart's records hold it; the bare loops time theirs alike). Figures: training
examples/s over the epochs' seconds (steps + validation), and end to end over the whole call (headstart also
validates before training and copies and restores the best weights). Test accuracy of each side on the same
held-out reviews (each predicting at its own precision, untimed). Target: headstart / bare fp32 >= 1.5x at equal
test accuracy (within two standard errors).

layout (channels-last for images; a measurement that decided a default, no target). Bare loops over timm's
EfficientNet-Lite0 at --layout-sizes (128 224) at --precision (bf16 autocast), the model and the input contiguous,
both torch.channels_last, or only the input channels-last (input-only, headstart's default since: the weights stay
contiguous): embedding (eval, no_grad, batches of 64 over --layout-images digits) and training steps (train mode,
AdamW, a linear head, --layout-steps steps of batch 32); one untimed warm-up batch per side first.
Figure: images/s of each layout / contiguous.

Results go to bench/results/speed.json, rewritten after each part so that a run cut short keeps its rows.
--quick shrinks every part to a smoke run of a few minutes (64 / 16 / 32 examples for prefix, 128 texts, 64 / 16 /
32 reviews for 1 epoch, 64 images at 128 px and 2 steps, 1 repeat): its figures are warm-up and noise.

    python bench/speed.py [--parts prefix embed finetune layout] [--repeats 3] [--quick]
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import math
import os
import statistics
import sys
import time
from contextlib import contextmanager
from functools import partial
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from accelerate.utils import set_seed

sys.path.insert(0, str(Path(__file__).parent))
from _common import Stopwatch, check_quiet, cold_cache, machine, print_table, write_results  # noqa: E402

from headstart import backbones, strategies  # noqa: E402
from headstart.config import BackboneSpec, TrainSpec  # noqa: E402
from headstart.data import TaskData, load_examples  # noqa: E402
from headstart.data.splits import stratified_split, stratified_subset  # noqa: E402
from headstart.errors import HeadstartError  # noqa: E402
from headstart.model import TransferModel, autocast  # noqa: E402
from headstart.precision import resolve_precision  # noqa: E402
from headstart.tasks import ClassificationTask  # noqa: E402
from headstart.train import Callback, new_model, run  # noqa: E402
from headstart.train.progress import silenced  # noqa: E402
from headstart.train.cache import clear_memory_cache, embed  # noqa: E402

PARTS = ("prefix", "embed", "finetune", "layout")
LAYOUTS = ("contiguous", "channels_last", "input-only")  # the first is the baseline
TEXT, IMAGE = "minilm-l6", "efficientnet-lite0"
REVIEWS = "builtin:rotten-tomatoes"

others_seen: list[float] = []  # every timed block's share of the CPU used by other processes, for check_quiet


class Clock(Stopwatch):
    """A Stopwatch that also counts this process's CPU seconds (user + system, threads and children included)."""

    def __enter__(self) -> "Clock":
        self._cpu0 = _cpu_seconds()
        return super().__enter__()

    def __exit__(self, *exc) -> None:
        super().__exit__(*exc)
        self.cpu = _cpu_seconds() - self._cpu0
        others_seen.append(self.others)


def _cpu_seconds() -> float:
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def rotations(sides: list[str], repeats: int):
    """The order of the sides in each repeat: rotated by one each time (two sides alternate)."""
    for repeat in range(repeats):
        shift = repeat % len(sides)
        yield sides[shift:] + sides[:shift]


def median(values) -> float:
    return statistics.median(values)


def clocked(clock: Clock) -> dict:
    return {"wall": clock.seconds, "cpu": clock.cpu, "others": clock.others}


def split(source: str, n_train: int, n_val: int, n_test: int, seed: int) -> TaskData:
    """A stratified subset cut into exactly n_train / n_val / n_test examples."""
    examples = stratified_subset(load_examples(source), n_train + n_val + n_test, seed)
    rest, test = stratified_split(examples, n_test / len(examples), seed)
    train, val = stratified_split(rest, n_val / len(rest), seed + 1)
    return TaskData(train, val, test, ClassificationTask.from_labels(examples.labels), examples.modality)


def fresh(data: TaskData) -> TaskData:
    """The same splits with empty notes: each run's notes say which path it took."""
    return dataclasses.replace(data, notes=[])


def test_accuracy(model: TransferModel, data: TaskData, precision: str) -> float:
    logits = model.logits(data.test.inputs, 64, precision)
    return float((logits.argmax(-1).numpy() == data.targets(data.test)).mean())


def noise(a: float, b: float, n: int) -> float:
    """Two standard errors of the difference of two accuracies on n examples."""
    p = (a + b) / 2
    return 2 * math.sqrt(max(2 * p * (1 - p) / n, 1e-12))


@contextmanager
def prefix_max(value: str | None):
    """HEADSTART_PREFIX_MAX set to value (None: unset) for the block, then as it was."""
    before = os.environ.get("HEADSTART_PREFIX_MAX")
    if value is None:
        os.environ.pop("HEADSTART_PREFIX_MAX", None)
    else:
        os.environ["HEADSTART_PREFIX_MAX"] = value
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("HEADSTART_PREFIX_MAX", None)
        else:
            os.environ["HEADSTART_PREFIX_MAX"] = before


class _TrainingStarts(Callback):
    """When the first phase starts training: after Accelerate's set-up, the (prefix) embedding and epoch 0."""

    def __init__(self):
        self.at = None

    def on_phase_start(self, state) -> None:
        if self.at is None:
            self.at = time.perf_counter()


def verdict(met: bool) -> str:
    return "yes" if met else "NO"


# -- prefix ------------------------------------------------------------------------------------------------------

def prefix_run(backbone, data: TaskData, k: int, side: str, args, precision: str) -> dict:
    """One freeze:K run, cold cache; side "cache" (prefix cache allowed) or "today" (HEADSTART_PREFIX_MAX=0)."""
    data = fresh(data)
    with cold_cache(), prefix_max(None if side == "cache" else "0"), silenced():  # the path is checked below
        model = new_model(copy.deepcopy(backbone), data, args.seed)
        marks = _TrainingStarts()
        spec = TrainSpec(batch_size=args.batch_size, seed=args.seed, patience=args.prefix_epochs + 1)
        with Clock() as clock:
            started = time.perf_counter()
            history = run(model, data, strategies.plan(f"freeze:{k}", epochs=args.prefix_epochs), spec, precision,
                          show_progress=False, callbacks=[marks])
    seconds = [r.seconds for r in history.records]
    cached = any("ran once over the data" in note for note in data.notes)
    if cached != (side == "cache"):
        raise HeadstartError(f"freeze:{k} on {backbone.modality}s, side {side}: the run took the "
                             f"{'cached' if cached else 'plain'} path; notes: {data.notes}")
    return {**clocked(clock), "setup": marks.at - started - seconds[0], "val0": seconds[0], "first": seconds[1],
            "epoch": float(np.mean(seconds[2:])), "epochs": seconds, "path": "cache" if cached else "every batch",
            "accuracy": test_accuracy(model, data, precision)}


@torch.no_grad()
def frozen_share(backbone, k: int, inputs: list, precision: str, repeats: int = 7) -> float:
    """The frozen prefix's share of a forward pass over one batch: median wall times of the prefix and of the whole
    backbone, timed in turn (after one untimed pass of each)."""
    cut, batch = backbone.cut(k), backbone.preprocess(inputs)
    if isinstance(cut, str):  # not split there (the run then says so too)
        return math.nan
    backbone.eval()
    times = {cut: [], backbone: []}
    for _ in range(repeats + 1):
        for forward in times:
            started = time.perf_counter()
            with autocast(precision):
                forward(batch)
            times[forward].append(time.perf_counter() - started)
    return median(times[cut][1:]) / median(times[backbone][1:])


def prefix_part(args, precision: str, summary: list) -> dict:
    jobs = [(TEXT, REVIEWS, BackboneSpec(name=TEXT, max_length=args.prefix_max_length), args.text_k),
            (IMAGE, args.image_data, BackboneSpec(name=IMAGE, image_size=args.prefix_image_size), args.image_k)]
    out, rows = {}, []
    for name, source, spec, ks in jobs:
        if not ks:
            continue
        data = split(source, args.prefix_train, args.prefix_val, args.prefix_test, args.seed)
        backbone = backbones.load(spec)
        groups = len(backbone.layer_groups())
        for k in ks:
            share = frozen_share(backbone, k, data.train.inputs[:64], precision)
            rest = min(1.0, max(0.0, 1 - share))  # (a share over 1 is timing noise)
            ideal = 3 * rest / (1 + 2 * rest)  # steps only: today F + 2 F_suffix, cached 3 F_suffix
            runs = {"cache": [], "today": []}
            for order in rotations(list(runs), args.repeats):
                for side in order:
                    runs[side].append(prefix_run(backbone, data, k, side, args, precision))
            med = {side: {key: median(r[key] for r in rs) for key in ("epoch", "first", "setup", "wall", "cpu",
                                                                      "accuracy")} for side, rs in runs.items()}
            ratio = med["cache"]["epoch"] / med["today"]["epoch"]
            target = (1 - k / groups) + 0.1
            gap = med["cache"]["accuracy"] - med["today"]["accuracy"]
            within = noise(med["cache"]["accuracy"], med["today"]["accuracy"], len(data.test))
            met = ratio <= target and abs(gap) <= within
            key = f"{name} freeze:{k}"
            out[key] = {"groups": groups, "k": k, "source": source, "frozen_forward_share": share,
                        "ideal_epoch_ratio": ideal, "n_train": len(data.train), "n_val": len(data.val),
                        "n_test": len(data.test), "runs": runs, "median": med, "epoch_ratio": ratio,
                        "target": target, "accuracy_gap": gap, "accuracy_noise": within, "met": met}
            for side, label in (("cache", "prefix cache"), ("today", "today (PREFIX_MAX=0)")):
                m, rs = med[side], runs[side]
                rows.append([key, label, f"{m['epoch']:.2f}", f"{m['first']:.2f}", f"{m['setup']:.2f}",
                             f"{m['wall']:.1f}", f"{m['cpu']:.1f}", f"{m['accuracy']:.3f}",
                             f"{max(r['others'] for r in rs):.0%}"])
            rows.append([key, "cache / today", f"{ratio:.3f}", f"{med['cache']['first'] / med['today']['first']:.3f}",
                         "", f"{med['cache']['wall'] / med['today']['wall']:.3f}",
                         f"{med['cache']['cpu'] / med['today']['cpu']:.3f}", f"{gap:+.3f}", ""])
            rows.append([key, "frozen share of a forward", f"{share:.2f} -> ideal epoch ratio {ideal:.2f}", "", "",
                         "", "", "", ""])
            summary.append([f"{key} epoch seconds", f"{med['cache']['epoch']:.2f} s", f"{med['today']['epoch']:.2f} s",
                            f"{ratio:.3f}", f"<= {target:.2f}, accuracy within +-{within:.3f}", verdict(met)])
    print_table(f"freeze:K epoch cost, {args.prefix_epochs} epochs, batch {args.batch_size}, {precision}, cold cache, "
                f"median of {args.repeats}",
                ["model", "side", "epoch s (after 1st)", "1st epoch s", "set-up s", "run wall s", "run CPU s",
                 "test acc", "CPU used by others (max)"], rows)
    print("set-up: from the call to the first training step, minus epoch 0's validation (the cached side's one-off "
          "embedding of the prefix is here, not in the first epoch)\nideal epoch ratio: 3(1 - s) / (3 - 2s) for a "
          "frozen share s of the forward pass, if a backward pass costs two forwards and nothing else counts")
    return out


# -- embed -------------------------------------------------------------------------------------------------------

def pooled(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    mask = mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * mask).sum(1) / mask.sum(1).clamp(min=1)


@torch.no_grad()
def bare_embed(hf, tokenizer, texts: list[str], order: np.ndarray, max_length: int, precision: str) -> torch.Tensor:
    """The textbook loop: batches of 64 in `order`, padded to their longest, mean-pooled; rows in input order."""
    hf.eval()
    out = torch.empty(len(texts), hf.config.hidden_size)
    for start in range(0, len(texts), 64):
        picked = order[start:start + 64]
        batch = tokenizer([texts[i] for i in picked], padding=True, truncation=True, max_length=max_length,
                          return_tensors="pt")
        with autocast(precision):
            hidden = hf(**batch).last_hidden_state
        out[torch.from_numpy(picked)] = pooled(hidden, batch["attention_mask"]).float()
    return out


def padding_share(tokenizer, texts: list[str], order: np.ndarray, max_length: int) -> float:
    """Of the token positions a loop in this order computes, the share that is padding."""
    lengths = np.array([len(ids) for ids in tokenizer(texts, truncation=True, max_length=max_length)["input_ids"]])
    padded = sum(len(lengths[order[s:s + 64]]) * lengths[order[s:s + 64]].max() for s in range(0, len(texts), 64))
    return 1 - lengths.sum() / padded


def embed_part(args, precision: str, summary: list) -> dict:
    backbone = backbones.load(BackboneSpec(name=TEXT, max_length=args.embed_max_length)).eval()
    hf, tokenizer = backbone.model, backbone.tokenizer
    with Clock() as fingerprinting:
        fingerprint = backbone.fingerprint()
    out, rows = {"fingerprint_seconds": fingerprinting.seconds}, []
    for source in args.embed_data:
        try:
            examples = load_examples(source)
        except HeadstartError as err:
            print(f"\n{source} skipped: {err}")
            continue
        pick = np.random.default_rng(args.seed).permutation(len(examples))[:args.embed_texts]
        texts = [examples.inputs[i] for i in pick]
        data_order = np.arange(len(texts))
        sorted_order = np.argsort(-np.array([len(t) for t in texts]), kind="stable")
        sides = {
            "headstart": partial(embed, backbone, texts, 64, precision, show_progress=False, fingerprint=fingerprint),
            "bare": partial(bare_embed, hf, tokenizer, texts, data_order, args.embed_max_length, precision),
            "bare sorted": partial(bare_embed, hf, tokenizer, texts, sorted_order, args.embed_max_length, precision),
        }
        runs, features = {side: [] for side in sides}, {}
        sides["bare sorted"]()  # warm-up, untimed: no side pays for the kernels' first use of each padded length
        for order in rotations(list(sides), args.repeats):
            for side in order:
                with cold_cache(), Clock() as clock:  # empty on disk and in memory: headstart computes, writes all
                    features[side] = sides[side]()
                runs[side].append(clocked(clock))
        rate = {side: len(texts) / median(r["wall"] for r in rs) for side, rs in runs.items()}
        agree = min(float(F.cosine_similarity(features["headstart"], features[side]).min())
                    for side in ("bare", "bare sorted"))
        pads = {"bare": padding_share(tokenizer, texts, data_order, args.embed_max_length),
                "bare sorted": padding_share(tokenizer, texts, sorted_order, args.embed_max_length)}
        pads["headstart"] = pads["bare sorted"]  # the same order (longest first by characters)
        ratio, sorted_ratio = rate["headstart"] / rate["bare"], rate["headstart"] / rate["bare sorted"]
        out[source] = {"n_texts": len(texts), "runs": runs, "texts_per_second": rate, "padding_share": pads,
                       "ratio": ratio, "ratio_to_sorted": sorted_ratio, "min_cosine": agree, "met": ratio >= 0.9}
        for side, rs in runs.items():
            rows.append([source, side, f"{rate[side]:.0f}", f"{median(r['wall'] for r in rs):.2f}",
                         f"{median(r['cpu'] for r in rs):.2f}", f"{pads[side]:.0%}",
                         f"{max(r['others'] for r in rs):.0%}"])
        rows.append([source, "headstart / bare", f"{ratio:.3f}", "", "", "", ""])
        rows.append([source, "headstart / bare sorted", f"{sorted_ratio:.3f}", "", "", "", ""])
        summary.append([f"embed {len(texts)} {source.removeprefix('builtin:')} texts/s", f"{rate['headstart']:.0f}",
                        f"{rate['bare']:.0f} (sorted {rate['bare sorted']:.0f})", f"{ratio:.3f}", ">= 0.9",
                        verdict(ratio >= 0.9)])
    print_table(f"embedding throughput, MiniLM, batch 64, max_length {args.embed_max_length}, {precision}, cold cache, "
                f"median of {args.repeats}", ["data", "loop", "texts/s", "wall s", "CPU s", "padding",
                                              "CPU used by others (max)"], rows)
    print(f"headstart's fingerprint of the backbone (passed in, not in its time): {fingerprinting.seconds:.2f} s; "
          "features agree with the bare loop's to cosine >= "
          + ", ".join(f"{v['min_cosine']:.4f}" for k, v in out.items() if isinstance(v, dict)))
    return out


# -- finetune ----------------------------------------------------------------------------------------------------

def ft_headstart(backbone, data: TaskData, args, precision: str) -> dict:
    data = fresh(data)
    with cold_cache(), silenced():
        model = new_model(copy.deepcopy(backbone), data, args.seed)
        spec = TrainSpec(batch_size=args.batch_size, seed=args.seed, patience=args.ft_epochs + 1)
        with Clock() as clock:
            history = run(model, data, strategies.plan("full", epochs=args.ft_epochs), spec, precision,
                          show_progress=False)
    return {**clocked(clock), "epochs": sum(r.seconds for r in history.records[1:]), "precision": precision,
            "accuracy": test_accuracy(model, data, precision)}


def ft_bare(backbone, data: TaskData, args, precision: str) -> dict:
    """The bare loop: the same pretrained weights and seeded head, AdamW, random batches padded to their longest."""
    set_seed(args.seed)  # as new_model seeds before the head is made
    model = TransferModel(copy.deepcopy(backbone), data.task)
    hf, tokenizer, head = model.backbone.model, model.backbone.tokenizer, model.head
    optimizer = torch.optim.AdamW([{"params": head.parameters(), "lr": 1e-3}, {"params": hf.parameters(), "lr": 1e-4}],
                                  weight_decay=0.01)
    texts, y = data.train.inputs, torch.from_numpy(data.targets(data.train))
    y_val = torch.from_numpy(data.targets(data.val))
    generator = torch.Generator().manual_seed(args.seed)
    seconds = []

    def tokens(batch):
        return tokenizer(batch, padding=True, truncation=True, max_length=args.ft_max_length, return_tensors="pt")

    with Clock() as clock:
        for _ in range(args.ft_epochs):
            started = time.perf_counter()
            hf.train(), head.train()
            for index in torch.randperm(len(texts), generator=generator).split(args.batch_size):
                batch = tokens([texts[i] for i in index])
                with autocast(precision):
                    logits = head(pooled(hf(**batch).last_hidden_state, batch["attention_mask"]))
                loss = F.cross_entropy(logits.float(), y[index])
                loss.backward()
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
                loss.item()
            hf.eval(), head.eval()
            correct = 0
            with torch.no_grad():
                for start in range(0, len(data.val), 64):
                    batch = tokens(data.val.inputs[start:start + 64])
                    with autocast(precision):
                        logits = head(pooled(hf(**batch).last_hidden_state, batch["attention_mask"]))
                    correct += int((logits.float().argmax(-1) == y_val[start:start + 64]).sum())
            seconds.append(time.perf_counter() - started)
    return {**clocked(clock), "epochs": sum(seconds), "precision": precision,
            "val_accuracy": correct / len(data.val), "accuracy": test_accuracy(model, data, precision)}


def finetune_part(args, precision: str, summary: list) -> dict:
    data = split(REVIEWS, args.ft_train, args.ft_val, args.ft_test, args.seed)
    backbone = backbones.load(BackboneSpec(name=TEXT, max_length=args.ft_max_length))
    sides = {"headstart": lambda: ft_headstart(backbone, data, args, precision),
             "bare fp32": lambda: ft_bare(backbone, data, args, "fp32"),
             "bare bf16": lambda: ft_bare(backbone, data, args, "bf16")}
    runs = {side: [] for side in sides}
    for order in rotations(list(sides), args.repeats):
        for side in order:
            runs[side].append(sides[side]())
    examples = len(data.train) * args.ft_epochs
    rate = {side: {"epochs": examples / median(r["epochs"] for r in rs), "end_to_end": examples / median(r["wall"]
                                                                                                          for r in rs)}
            for side, rs in runs.items()}
    accuracy = {side: median(r["accuracy"] for r in rs) for side, rs in runs.items()}
    ratio = {side: rate["headstart"]["epochs"] / rate[side]["epochs"] for side in ("bare fp32", "bare bf16")}
    gap = accuracy["headstart"] - accuracy["bare fp32"]
    within = noise(accuracy["headstart"], accuracy["bare fp32"], len(data.test))
    met = ratio["bare fp32"] >= 1.5 and abs(gap) <= within
    rows = [[side, rs[0]["precision"], f"{rate[side]['epochs']:.1f}", f"{rate[side]['end_to_end']:.1f}",
             f"{median(r['epochs'] for r in rs):.1f}", f"{median(r['cpu'] for r in rs):.1f}", f"{accuracy[side]:.3f}",
             f"{max(r['others'] for r in rs):.0%}"] for side, rs in runs.items()]
    for side in ("bare fp32", "bare bf16"):
        rows.append([f"headstart / {side}", "", f"{ratio[side]:.3f}",
                     f"{rate['headstart']['end_to_end'] / rate[side]['end_to_end']:.3f}", "", "",
                     f"{accuracy['headstart'] - accuracy[side]:+.3f}", ""])
    rows.append(["bare bf16 / bare fp32", "", f"{rate['bare bf16']['epochs'] / rate['bare fp32']['epochs']:.3f}",
                 f"{rate['bare bf16']['end_to_end'] / rate['bare fp32']['end_to_end']:.3f}", "", "", "", ""])
    print_table(f"full fine-tuning of MiniLM, {len(data.train)} reviews x {args.ft_epochs} epochs, batch "
                f"{args.batch_size}, max_length {args.ft_max_length}, {len(data.test)} test reviews, median of "
                f"{args.repeats}", ["loop", "precision", "train ex/s (epochs)", "ex/s end to end", "epochs s",
                                    "CPU s", "test acc", "CPU used by others (max)"], rows)
    summary.append([f"full fine-tuning ex/s ({len(data.train)} x {args.ft_epochs})",
                    f"{rate['headstart']['epochs']:.1f}", f"{rate['bare fp32']['epochs']:.1f} (fp32)",
                    f"{ratio['bare fp32']:.3f}", f">= 1.5, accuracy within +-{within:.3f}", verdict(met)])
    summary.append(["  same, against bare bf16", f"{rate['headstart']['epochs']:.1f}",
                    f"{rate['bare bf16']['epochs']:.1f} (bf16)", f"{ratio['bare bf16']:.3f}", "(separates bf16)", "-"])
    return {"n_train": len(data.train), "n_val": len(data.val), "n_test": len(data.test), "runs": runs,
            "examples_per_second": rate, "accuracy": accuracy, "ratio": ratio, "accuracy_gap": gap,
            "accuracy_noise": within, "met": met}


# -- layout ------------------------------------------------------------------------------------------------------

def layout_run(base: torch.nn.Module, dim: int, pixels: torch.Tensor, y: torch.Tensor, layout: str, args,
               precision: str) -> dict:
    """Embedding then training throughput of a fresh copy of the model in one memory layout."""
    # channels_last: model and input; input-only: the weights stay contiguous (what safetensors saves), the batch is
    # channels-last, and the convolutions follow the input's layout.
    fmt = torch.channels_last if layout == "channels_last" else torch.contiguous_format
    model = copy.deepcopy(base).to(memory_format=fmt).eval()
    x = pixels.contiguous(memory_format=torch.contiguous_format if layout == "contiguous" else torch.channels_last)
    with torch.no_grad():
        with autocast(precision):
            model(x[:64])  # warm-up, untimed
        with Clock() as embedding:
            outputs = []
            for start in range(0, len(x), 64):
                with autocast(precision):
                    outputs.append(model(x[start:start + 64]).float())
    features = torch.cat(outputs)
    torch.manual_seed(args.seed)
    head = torch.nn.Linear(dim, int(y.max()) + 1)
    model.train()
    optimizer = torch.optim.AdamW([*model.parameters(), *head.parameters()], lr=1e-4)
    batches = [(i * args.batch_size) % len(x) for i in range(args.layout_steps + 1)]

    def step(start: int) -> None:
        xb, yb = x[start:start + args.batch_size], y[start:start + args.batch_size]
        with autocast(precision):
            logits = head(model(xb))
        loss = F.cross_entropy(logits.float(), yb)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        loss.item()

    step(batches[0])  # warm-up, untimed
    with Clock() as training:
        for start in batches[1:]:
            step(start)
    trained = sum(min(args.batch_size, len(x) - s) for s in batches[1:])
    return {"embed": clocked(embedding), "train": clocked(training), "n_embedded": len(x), "n_trained": trained,
            "features": features}


def layout_part(args, precision: str, summary: list) -> dict:
    examples = load_examples("builtin:digits")
    pick = np.random.default_rng(args.seed).permutation(len(examples))[:args.layout_images]
    images, labels = [examples.inputs[i] for i in pick], [int(examples.labels[i]) for i in pick]
    out, rows = {}, []
    for size in args.layout_sizes:
        backbone = backbones.load(BackboneSpec(name=IMAGE, image_size=size))
        pixels = backbone.preprocess(images)["pixels"]
        y = torch.tensor(labels)
        runs = {layout: [] for layout in LAYOUTS}
        for order in rotations(list(runs), args.repeats):
            for layout in order:
                runs[layout].append(layout_run(backbone.model, backbone.dim, pixels, y, layout, args, precision))
        agree = max(float((runs["contiguous"][0]["features"] - runs[layout][0]["features"]).abs().max())
                    for layout in LAYOUTS[1:])
        for rs in runs.values():
            for r in rs:
                r.pop("features")
        rate = {layout: {kind: rs[0][f"n_{'embedded' if kind == 'embed' else 'trained'}"]
                         / median(r[kind]["wall"] for r in rs) for kind in ("embed", "train")}
                for layout, rs in runs.items()}
        ratio = {layout: {kind: rate[layout][kind] / rate["contiguous"][kind] for kind in ("embed", "train")}
                 for layout in LAYOUTS[1:]}
        out[str(size)] = {"runs": runs, "images_per_second": rate, "ratio": ratio, "max_abs_feature_difference": agree}
        for layout, rs in runs.items():
            rows.append([size, layout, f"{rate[layout]['embed']:.1f}", f"{rate[layout]['train']:.1f}",
                         f"{median(r['embed']['cpu'] + r['train']['cpu'] for r in rs):.1f}",
                         f"{max(max(r['embed']['others'], r['train']['others']) for r in rs):.0%}"])
        for layout in LAYOUTS[1:]:
            rows.append([size, f"{layout} / contiguous", f"{ratio[layout]['embed']:.3f}",
                         f"{ratio[layout]['train']:.3f}", "", ""])
            for kind, what in (("embed", "embedding"), ("train", "training")):
                summary.append([f"{layout} {what} images/s, Lite0 {size} px", f"{rate[layout][kind]:.1f}",
                                f"{rate['contiguous'][kind]:.1f} (contiguous)", f"{ratio[layout][kind]:.3f}",
                                "none (decides a default)", "-"])
    print_table(f"EfficientNet-Lite0 memory layout, {precision}, embed {args.layout_images} images in 64s, train "
                f"{args.layout_steps} steps of {args.batch_size}, median of {args.repeats}",
                ["size", "layout", "embed images/s", "train images/s", "CPU s", "CPU used by others (max)"], rows)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description="headstart's speed-ups against baselines timed in the same run")
    parser.add_argument("--parts", nargs="+", choices=PARTS, default=list(PARTS))
    parser.add_argument("--repeats", type=int, default=None, help="runs of each side, alternating which goes first "
                                                                  "(default 3; 1 with --quick)")
    parser.add_argument("--batch-size", type=int, default=32, help="training batch (prefix, finetune, layout)")
    parser.add_argument("--precision", choices=["bf16", "fp32"], default=None,
                        help="headstart's arithmetic (and the bare embedding loop's); default: bf16 where available")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--prefix-train", type=int, default=1000)
    parser.add_argument("--prefix-val", type=int, default=100)
    parser.add_argument("--prefix-test", type=int, default=500)
    parser.add_argument("--prefix-epochs", type=int, default=3, help="at least 3: the figure is epochs 2.. of training")
    parser.add_argument("--prefix-max-length", type=int, default=64)
    parser.add_argument("--prefix-image-size", type=int, default=64)
    parser.add_argument("--text-k", type=int, nargs="*", default=[3, 5], help="K of freeze:K for MiniLM (7 groups)")
    parser.add_argument("--image-k", type=int, nargs="*", default=[4, 7], help="K for EfficientNet-Lite0 (9 groups)")
    parser.add_argument("--image-data", default="builtin:digits", help="builtin:digits or builtin:mnist")
    parser.add_argument("--embed-texts", type=int, default=2000)
    parser.add_argument("--embed-data", nargs="+", default=[REVIEWS, "builtin:spam"])
    parser.add_argument("--embed-max-length", type=int, default=128)
    parser.add_argument("--ft-train", type=int, default=1000)
    parser.add_argument("--ft-val", type=int, default=100)
    parser.add_argument("--ft-test", type=int, default=500)
    parser.add_argument("--ft-epochs", type=int, default=2)
    parser.add_argument("--ft-max-length", type=int, default=128)
    parser.add_argument("--layout-sizes", type=int, nargs="+", default=[128, 224])
    parser.add_argument("--layout-images", type=int, default=256, help="digits embedded per side")
    parser.add_argument("--layout-steps", type=int, default=8, help="timed training steps per side (after a warm-up)")
    parser.add_argument("--quick", action="store_true", help="a few-minute smoke run of every part")
    args = parser.parse_args()
    if args.quick:
        args.prefix_train, args.prefix_val, args.prefix_test = 64, 16, 32
        args.embed_texts, args.ft_train, args.ft_val, args.ft_test, args.ft_epochs = 128, 64, 16, 32, 1
        args.layout_sizes, args.layout_images, args.layout_steps = [128], 64, 2
    args.repeats = args.repeats or (1 if args.quick else 3)
    if args.prefix_epochs < 3:
        parser.error("--prefix-epochs must be at least 3 (the figure is the epochs after the first)")
    precision = resolve_precision(args.precision)
    results = {"args": vars(args), "precision": precision, "machine": machine(), "parts": {}, "part_seconds": {},
               "summary": []}
    summary = results["summary"]
    measure = {"prefix": prefix_part, "embed": embed_part, "finetune": finetune_part, "layout": layout_part}
    for part in PARTS:
        if part in args.parts:
            clear_memory_cache()
            started = time.perf_counter()
            results["parts"][part] = measure[part](args, precision, summary)
            results["part_seconds"][part] = time.perf_counter() - started
            print(f"({part}: {results['part_seconds'][part] / 60:.1f} minutes, loading included)")
            write_results("speed", results)
    print_table("summary", ["benchmark", "headstart", "baseline", "ratio", "target", "met?"], summary)
    check_quiet(others_seen)


if __name__ == "__main__":
    main()
