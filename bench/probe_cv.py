"""linear-probe-cv against linear-probe and a tuned logistic regression on the same frozen features.

Per task and seed: a stratified subset of the task's training part (--shots labels per class, or --size
examples) to train on and a stratified --test examples from the rest to test on, the same for every method.

- headstart linear-probe: `fit --strategy linear-probe` (AdamW on cached features, early stopping on a 10%
  validation split);
- headstart linear-probe-cv: `fit --strategy linear-probe-cv` (L-BFGS to convergence, C by 5-fold
  cross-validation on all the training examples, refit on all of them);
- reference: scikit-learn's LogisticRegression on the same frozen features (the feature cache's, so the same
  numbers), standardised, C chosen by GridSearchCV (5-fold stratified, the same C grid) on all the training
  examples: what a careful practitioner would run.

Each fit runs on a warm feature cache (the examples are embedded once first), so its time is the method's own;
seconds are wall clock and CPU seconds of this process. Paired over seeds: the mean difference in test
accuracy and on how many seeds each is ahead.

Targets, fixed before the confirming run (the defaults: five tasks, seeds 0-4, 16 per class, then --shots 0
for 2,000 examples): linear-probe-cv at most 0.5 points below the tuned logistic regression on average over
tasks and seeds, and at or above linear-probe on average.

    python bench/probe_cv.py [--tasks rotten-tomatoes debates brown spam fashion-mnist] [--seeds 0 1 2 3 4]
                             [--shots 16] [--size 2000] [--test 500]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _common import Stopwatch, check_quiet, machine, print_table, write_labelled, write_results  # noqa: E402

import headstart  # noqa: E402
from headstart import backbones  # noqa: E402
from headstart.config import BackboneSpec  # noqa: E402
from headstart.data import load_examples  # noqa: E402
from headstart.data.splits import few_shot, stratified_split, stratified_subset  # noqa: E402
from headstart.precision import resolve_precision  # noqa: E402
from headstart.train.cache import embed  # noqa: E402
from headstart.train.convex import C_GRID  # noqa: E402

BACKBONES = {"text": dict(backbone="minilm-l6", max_length=128), "image": dict(backbone="efficientnet-lite0",
                                                                              image_size=32)}
METHODS = ("linear-probe", "linear-probe-cv", "sklearn-lr-cv")


def split(examples, args, seed):
    """(train, test): a stratified test set, then the training subset from the rest."""
    test_share = args.test / len(examples)
    rest, test = stratified_split(examples, test_share, seed)
    if args.shots:
        train = few_shot(rest, args.shots, seed=seed)
    else:
        train = stratified_subset(rest, min(args.size, len(rest) - 1), seed)
    return train, test


def reference(train, test, options, seed) -> tuple[float, float, float]:
    """(test accuracy, wall s, CPU s) of a tuned logistic regression on the frozen features."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GridSearchCV, StratifiedKFold
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    backbone = backbones.load(BackboneSpec(name=options["backbone"], image_size=options.get("image_size"),
                                           max_length=options.get("max_length", 128)))
    precision = resolve_precision(None)
    x_train = embed(backbone, train.inputs, 64, precision, False).numpy()  # warm: the fits embedded them
    x_test = embed(backbone, test.inputs, 64, precision, False).numpy()
    started, cpu = time.perf_counter(), time.process_time()
    smallest = min(train.labels.count(c) for c in set(train.labels))
    search = GridSearchCV(make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)),
                          {"logisticregression__C": list(C_GRID)},
                          cv=StratifiedKFold(min(5, smallest), shuffle=True, random_state=seed))
    search.fit(x_train, train.labels)
    accuracy = float(np.mean(search.predict(x_test) == np.array(test.labels)))
    return accuracy, time.perf_counter() - started, time.process_time() - cpu


def run_task(name: str, args) -> list[dict]:
    examples = load_examples(f"builtin:{name}")
    options = BACKBONES[examples.modality]
    rows = []
    for seed in args.seeds:
        train, test = split(examples, args, seed)
        with tempfile.TemporaryDirectory() as folder:
            folder = Path(folder)
            train_path, test_path = write_labelled(folder, "train", train), write_labelled(folder, "test", test)
            headstart.fit(train_path, test_path, strategy="linear-probe", epochs=1, out=folder / "warm",
                          show_progress=False, seed=seed, **options)  # embeds everything: the fits below are warm
            row = {"task": name, "seed": seed, "n_train": len(train), "n_test": len(test)}
            for method in METHODS[:2]:
                with Stopwatch() as watch:
                    cpu = time.process_time()
                    result = headstart.fit(train_path, test_path, strategy=method, out=folder / method,
                                           show_progress=False, seed=seed, **options)
                row[method] = {"accuracy": result.metrics["accuracy"], "seconds": watch.seconds,
                               "cpu_seconds": time.process_time() - cpu, "others": watch.others}
            with Stopwatch() as watch:
                accuracy, seconds, cpu = reference(train, test, options, seed)
            row["sklearn-lr-cv"] = {"accuracy": accuracy, "seconds": seconds, "cpu_seconds": cpu,
                                    "others": watch.others}
        rows.append(row)
        print(f"{name} seed {seed}: " + ", ".join(f"{m} {row[m]['accuracy']:.3f}" for m in METHODS), flush=True)
    return rows


def summarise(rows: list[dict]) -> list[list]:
    table = []
    for task in dict.fromkeys(r["task"] for r in rows):
        mine = [r for r in rows if r["task"] == task]
        cells = [task, str(mine[0]["n_train"])]
        for method in METHODS:
            values = [r[method]["accuracy"] for r in mine]
            cells.append(f"{np.mean(values):.3f} ± {np.std(values):.3f}")
        for a, b in (("linear-probe-cv", "linear-probe"), ("linear-probe-cv", "sklearn-lr-cv")):
            diff = np.array([r[a]["accuracy"] - r[b]["accuracy"] for r in mine])
            cells.append(f"{diff.mean():+.3f} ({(diff > 0).sum()}/{(diff < 0).sum()})")
        for method in METHODS:
            cells.append(f"{np.mean([r[method]['cpu_seconds'] for r in mine]):.1f}")
        table.append(cells)
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tasks", nargs="+", default=["rotten-tomatoes", "debates", "brown", "spam",
                                                        "fashion-mnist"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2, 3, 4])
    parser.add_argument("--shots", type=int, default=16, help="labels per class; 0: use --size examples")
    parser.add_argument("--size", type=int, default=2000)
    parser.add_argument("--test", type=int, default=500)
    args = parser.parse_args()
    rows = [row for task in args.tasks for row in run_task(task, args)]
    header = ["task", "n train", *METHODS, "cv - lp (ahead/behind)", "cv - sklearn (ahead/behind)",
              *[f"{m} CPU s" for m in METHODS]]
    print_table(f"test accuracy, mean ± sd over seeds {args.seeds}", header, summarise(rows))
    check_quiet([r[m]["others"] for r in rows for m in METHODS])
    setting = f"{args.shots}-shot" if args.shots else f"n{args.size}"
    write_results(f"probe_cv-{setting}", {"machine": machine(), "args": vars(args), "rows": rows})


if __name__ == "__main__":
    main()
