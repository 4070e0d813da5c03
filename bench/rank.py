"""Does `headstart rank` order backbones as fine-tuning does? Kendall's tau on real tasks, and what it saves.

Tasks (each a stratified subset of --train examples to rank and train on, and a disjoint --test part):
builtin:digits and builtin:mnist (images, --image-size px), builtin:rotten-tomatoes and builtin:brown
(5 genres; text, --max-length tokens). Both parts are written to disk as a user has them (image
folders, CSV) and go through the public API.

Candidates that differ for real:
  images  efficientnet-lite0, -lite1, -lite2 (ImageNet), efficientnet-lite0:random, and a headstart run
          directory: efficientnet-lite0 fine-tuned (`full`, 3 epochs) on 300 digits of builtin:mnist:test
          (MNIST's official test part, disjoint from the MNIST task's examples)
  text    minilm-l6, minilm-l6:random, and MiniLM cut to its first 4, 2 and 1 layers (local Hugging Face
          folders written to a temporary directory: config num_hidden_layers = k, those layers' weights, tokenizer)
Ground truth: test accuracy of `headstart.fit(strategy="linear-probe")` (30 epochs, lr 1e-2, best
validation epoch) of every candidate on the task's training part, tested on its test part.
Ranking quality: scipy.stats.kendalltau between a metric's scores and those accuracies, over the
candidates that have the score (LEEP and NCE need a source head: none for random weights or MiniLM).
Time: `headstart.rank` of all candidates against fitting all of them, each with a cold feature cache.

    python bench/rank.py [--train 300] [--test 300] [--image-size 32] [--max-length 64] [--quick]
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
from pathlib import Path

import numpy as np
from scipy.stats import kendalltau

sys.path.insert(0, str(Path(__file__).parent))
from _common import Stopwatch, check_quiet, cold_cache, machine, print_table, write_labelled, write_results  # noqa: E402

import headstart  # noqa: E402
from headstart.data import load_examples  # noqa: E402
from headstart.data.splits import stratified_split, stratified_subset  # noqa: E402
from headstart.select import DEFAULT_METRICS  # noqa: E402

TASKS = [("digits", "builtin:digits"), ("mnist", "builtin:mnist"), ("rotten-tomatoes", "builtin:rotten-tomatoes"),
         ("brown", "builtin:brown")]


def write_task(source: str, n_train: int, n_test: int, seed: int, folder: Path) -> tuple[str, str, str]:
    """(train, test, modality): a stratified subset split into disjoint parts, written as a user has them."""
    examples = stratified_subset(load_examples(source), n_train + n_test, seed)
    train, test = stratified_split(examples, n_test / (n_train + n_test), seed)
    return write_labelled(folder, "train", train), write_labelled(folder, "test", test), examples.modality


def truncated_minilm(layers: int, folder: Path) -> str:
    """MiniLM with only its first `layers` transformer layers, as a local Hugging Face folder."""
    from transformers import AutoModel, AutoTokenizer

    from headstart.backbones.hf_text import minilm_folder

    out = folder / f"minilm-l{layers}"
    model = AutoModel.from_pretrained(minilm_folder(), num_hidden_layers=layers)
    model.save_pretrained(out)
    AutoTokenizer.from_pretrained(minilm_folder()).save_pretrained(out)
    return str(out)


def candidates(modality: str, args, folder: Path, cache: dict) -> dict[str, str]:
    """Display name -> backbone name; the derived backbones are built once per modality."""
    if modality == "image":
        chosen = {n: n for n in ("efficientnet-lite0", "efficientnet-lite1", "efficientnet-lite2",
                                 "efficientnet-lite0:random")}
        if args.quick:
            chosen.pop("efficientnet-lite2")
        elif "mnist-run" not in cache:
            run = headstart.fit("builtin:mnist:test", backbone="efficientnet-lite0", strategy="full", epochs=3,
                                train_size=300, image_size=args.image_size, seed=args.seed,
                                out=folder / "lite0-mnist-full", show_progress=False)
            cache["mnist-run"] = str(run.run_dir)
        if "mnist-run" in cache:
            chosen["lite0 fine-tuned on MNIST (run dir)"] = cache["mnist-run"]
        return chosen
    for layers in ((2,) if args.quick else (4, 2, 1)):
        cache.setdefault(f"l{layers}", truncated_minilm(layers, folder))
    chosen = {"minilm-l6": "minilm-l6", "minilm-l6:random": "minilm-l6:random"}
    chosen.update({f"minilm first {k} layers (HF folder)": cache[f"l{k}"] for k in ((2,) if args.quick else (4, 2, 1))})
    return chosen


def tau(scores: dict, accuracies: dict) -> float | None:
    names = [n for n in accuracies if scores.get(n) is not None]
    if len(names) < 3:
        return None
    value = kendalltau([scores[n] for n in names], [accuracies[n] for n in names]).statistic
    return None if value is None or math.isnan(value) else float(value)


def run_task(name: str, source: str, args, folder: Path, cache: dict, shares: list) -> dict:
    task_dir = folder / name
    task_dir.mkdir()
    train, test, modality = write_task(source, args.train, args.test, args.seed, task_dir)
    chosen = candidates(modality, args, folder, cache)
    size = {"image_size": args.image_size, "max_length": args.max_length}
    with cold_cache(), Stopwatch() as ranking:
        rows = headstart.rank(train, list(chosen.values()), image_size=args.image_size, max_length=args.max_length,
                              seed=args.seed, show_progress=False)
    shares.append(ranking.others)
    display = {v: k for k, v in chosen.items()}
    scores = {m: {display[r["backbone"]]: r[m] for r in rows} for m in DEFAULT_METRICS}
    accuracies, fit_seconds = {}, 0.0
    with cold_cache():
        for shown, backbone in chosen.items():
            with Stopwatch() as fitting:
                run = headstart.fit(train, test, backbone=backbone, strategy="linear-probe", seed=args.seed,
                                    out=task_dir / f"fit-{len(accuracies)}", show_progress=False, **size)
            shares.append(fitting.others)
            accuracies[shown], fit_seconds = run.metrics["accuracy"], fit_seconds + fitting.seconds
    return {"source": source, "modality": modality, "n_train": args.train, "n_test": args.test,
            "accuracy": accuracies, "scores": scores, "tau": {m: tau(scores[m], accuracies) for m in DEFAULT_METRICS},
            "rank_seconds": ranking.seconds, "finetune_seconds": fit_seconds,
            "rank_to_finetune": ranking.seconds / fit_seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", type=int, default=300)
    parser.add_argument("--test", type=int, default=300)
    parser.add_argument("--image-size", type=int, default=32)
    parser.add_argument("--max-length", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="100 + 100 examples, 3 candidates per modality")
    args = parser.parse_args()
    if args.quick:
        args.train, args.test = 100, 100

    results, shares, cache = {}, [], {}
    with tempfile.TemporaryDirectory(prefix="headstart-bench-rank-") as tmp:
        for name, source in TASKS:
            print(f"task {name} ...", flush=True)
            results[name] = run_task(name, source, args, Path(tmp), cache, shares)

    for name, r in results.items():
        rows = [[c, f"{r['accuracy'][c]:.3f}", *(_fmt(r["scores"][m][c]) for m in DEFAULT_METRICS)] for c in r["accuracy"]]
        rows.sort(key=lambda row: -float(row[1]))
        print_table(f"{name} ({r['modality']}, {r['n_train']} train / {r['n_test']} test): linear-probe accuracy "
                    "and scores", ["candidate", "accuracy", *DEFAULT_METRICS], rows)
    average = {m: _mean([r["tau"][m] for r in results.values()]) for m in DEFAULT_METRICS}
    rows = [[name, *(_fmt(r["tau"][m], 2) for m in DEFAULT_METRICS), f"{r['rank_seconds']:.1f}",
             f"{r['finetune_seconds']:.1f}", f"{r['rank_to_finetune']:.2f}"] for name, r in results.items()]
    rows.append(["average", *(_fmt(average[m], 2) for m in DEFAULT_METRICS), "", "", ""])
    print_table("Kendall's tau against linear-probe test accuracy (n/a: fewer than 3 candidates have the score)",
                ["task", *DEFAULT_METRICS, "rank s", "fine-tune s", "rank / fine-tune"], rows)
    ratio = sum(r["rank_seconds"] for r in results.values()) / sum(r["finetune_seconds"] for r in results.values())
    print(f"\nranking all candidates took {ratio:.2f}x the time of fine-tuning them all (linear probe); "
          f"LogME's mean tau {_fmt(average['logme'], 2)} (target >= 0.6)")
    check_quiet(shares)
    write_results("rank", {"tasks": results, "average_tau": average, "rank_to_finetune": ratio,
                           "config": vars(args), "machine": machine(), "others_cpu_share": max(shares)})


def _fmt(value, digits: int = 4) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def _mean(values: list) -> float | None:
    known = [v for v in values if v is not None]
    return float(np.mean(known)) if known else None


if __name__ == "__main__":
    main()
