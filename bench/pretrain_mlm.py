"""Domain-adaptive masked-LM pretraining: does continuing MiniLM on in-domain text help a few-label task?

Data: builtin:rotten-tomatoes shuffled once (seed 0). The first --corpus reviews are the unlabelled
in-domain corpus (a .txt, labels dropped); the rest is the downstream pool, never seen by the MLM:
a fixed stratified --test set, and per seed a few-shot training set of --per-class reviews per class
drawn from what remains.

Adapted: `headstart.pretrain(corpus.txt, method="mlm", backbone="minilm-l6")`, --mlm-epochs at the
method's default lr (5e-5), max_length 64, timed. One adapted backbone; the seeds vary the downstream
labels and heads, which is where the few-label noise lives.

Downstream: `headstart.fit` with each --strategy (default lp-ft, plus the cheap linear-probe that
reads the features alone) on the same splits for the unadapted `minilm-l6` (the baseline, same run)
and for the adapted folder. Reported: test accuracy mean +- std over seeds, and the paired difference
adapted - unadapted per seed (mean +- std, and wins).

    python bench/pretrain_mlm.py [--corpus 2000] [--mlm-epochs 2] [--per-class 64] [--seeds 5] [--quick]
    python bench/pretrain_mlm.py --adapted DIR ...   # reuse an earlier MLM backbone, rerun only the downstream
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _common import Stopwatch, check_quiet, machine, print_table, write_csv, write_results  # noqa: E402

import headstart  # noqa: E402
from headstart.data import load_examples  # noqa: E402
from headstart.data.splits import few_shot, stratified_subset  # noqa: E402
from headstart.precision import resolve_precision  # noqa: E402


def one_line(text: str) -> str:
    return " ".join(str(text).split())


def splits(args):
    """(corpus texts, test examples, the pool few-shot training sets are drawn from); corpus and pool disjoint."""
    reviews = load_examples("builtin:rotten-tomatoes")
    order = np.random.default_rng(0).permutation(len(reviews))
    corpus = [one_line(reviews.inputs[i]) for i in order[:args.corpus]]
    pool = reviews.subset(order[args.corpus:])
    test = stratified_subset(pool, args.test, seed=0)
    held = set(test.ids)
    rest = pool.subset([i for i, name in enumerate(pool.ids) if name not in held])
    return corpus, test, rest


def reused(folder: Path, n_corpus: int) -> dict:
    """The summary of an earlier MLM run (--adapted), checked to come from a corpus of this size."""
    summary = json.loads((folder / "metrics.json").read_text())
    if summary.get("method") != "mlm" or summary.get("n_examples") != n_corpus:
        raise SystemExit(f"--adapted {folder}: not an mlm backbone of {n_corpus} texts; rerun without --adapted")
    history = [json.loads(line) for line in (folder / "history.jsonl").read_text().splitlines()]
    return {**summary, "seconds": sum(row.get("seconds", 0.0) for row in history), "history": history,
            "reused": str(folder)}


def mean_std(values: list[float]) -> str:
    spread = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.3f} +- {spread:.3f}"


def main() -> None:
    parser = argparse.ArgumentParser(description="domain-adaptive MLM of minilm-l6, then few-label fine-tuning")
    parser.add_argument("--corpus", type=int, default=2000, help="unlabelled in-domain reviews for the MLM")
    parser.add_argument("--mlm-epochs", type=int, default=2)
    parser.add_argument("--per-class", type=int, default=64, help="downstream labels per class")
    parser.add_argument("--test", type=int, default=400, help="downstream test reviews")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--strategy", nargs="+", default=["lp-ft", "linear-probe"])
    parser.add_argument("--max-length", type=int, default=64)
    parser.add_argument("--adapted", type=Path, default=None,
                        help="reuse the backbone folder of an earlier MLM (its metrics.json and history.jsonl) "
                             "instead of pretraining; it must come from the same --corpus")
    parser.add_argument("--quick", action="store_true", help="a 300-text, 1-epoch, 2-seed smoke run")
    args = parser.parse_args()
    if args.quick:
        args.corpus, args.mlm_epochs, args.per_class, args.test, args.seeds = 300, 1, 16, 100, 2
    precision = resolve_precision(None)
    corpus, test, rest = splits(args)
    shares, results = [], {}
    with tempfile.TemporaryDirectory(prefix="bench-mlm-") as tmp:
        tmp = Path(tmp)
        (tmp / "corpus.txt").write_text("\n".join(corpus) + "\n", encoding="utf-8")
        test_csv = write_csv(tmp / "test.csv", test)
        if args.adapted is None:
            with Stopwatch() as clock:
                adapted = headstart.pretrain(str(tmp / "corpus.txt"), method="mlm", backbone="minilm-l6",
                                             epochs=args.mlm_epochs, max_length=args.max_length,
                                             precision=precision, out=tmp / "adapted", show_progress=False)
            shares.append(clock.others)
            mlm = {**adapted.summary, "seconds": clock.seconds, "history": adapted.history}
        else:
            mlm = reused(args.adapted, len(corpus))
        backbones = {"minilm-l6": "minilm-l6", "minilm-l6 + MLM": str(args.adapted or adapted.out)}
        for seed in range(args.seeds):
            train_csv = write_csv(tmp / f"train-{seed}.csv", few_shot(rest, args.per_class, seed))
            for strategy in args.strategy:
                for name, backbone in backbones.items():
                    with Stopwatch() as clock:
                        run = headstart.fit(str(train_csv), str(test_csv), backbone=backbone, strategy=strategy,
                                            max_length=args.max_length, precision=precision, seed=seed,
                                            out=tmp / f"run-{seed}-{strategy}-{len(name)}", show_progress=False)
                    shares.append(clock.others)
                    results.setdefault(strategy, {}).setdefault(name, []).append(run.metrics["accuracy"])

    print_table(f"MLM on {len(corpus)} unlabelled reviews, {args.mlm_epochs} epoch(s), max_length "
                f"{args.max_length}", ["", "before", "after"],
                [["validation masked-token accuracy", f"{mlm['val_accuracy_before']:.3f}",
                  f"{mlm['val_accuracy']:.3f}"],
                 ["validation perplexity", f"{mlm['val_perplexity_before']:.1f}", f"{mlm['val_perplexity']:.1f}"],
                 ["seconds", "", f"{mlm['seconds']:.0f}"]])
    rows, paired = [], {}
    for strategy, by_backbone in results.items():
        base, ours = by_backbone["minilm-l6"], by_backbone["minilm-l6 + MLM"]
        diff = [a - b for a, b in zip(ours, base)]
        paired[strategy] = {"mean": statistics.mean(diff), "std": statistics.stdev(diff) if len(diff) > 1 else 0.0,
                            "wins": sum(d > 0 for d in diff), "ties": sum(d == 0 for d in diff)}
        rows.append([strategy, mean_std(base), mean_std(ours), mean_std(diff),
                     f"{paired[strategy]['wins']}/{len(diff)}"])
    print_table(f"downstream test accuracy, {args.per_class} labels per class, {len(test)} test reviews, "
                f"{args.seeds} seeds (mean +- std)",
                ["strategy", "minilm-l6", "minilm-l6 + MLM", "paired difference", "MLM better"], rows)
    check_quiet(shares)
    options = {key: str(value) if isinstance(value, Path) else value for key, value in vars(args).items()}
    write_results("pretrain_mlm", {"args": options, "machine": machine(), "precision": precision,
                                   "mlm": mlm, "accuracy": results, "paired_difference": paired,
                                   "other_processes_cpu": max(shares)})


if __name__ == "__main__":
    main()
