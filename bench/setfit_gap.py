"""Where headstart's `setfit` loses to the setfit package (issue 15 exploration): the body or the head.

Per task and seed (alternatives.py's splits at --shots per class): train the package's body and head, and
headstart's `fit --strategy setfit` (as is, and with the variants in --ours); then fit every head in HEADS on every
body's features of the same training examples and score it on the same test set. A body's row says how good its
features are under each head; the package's own prediction and headstart's own are the rows' `own` column.

    python bench/setfit_gap.py [--tasks rotten-tomatoes debates brown spam] [--seeds 100 101 102]
                               [--ours default fp32 batch16] [--threads 1] [--name setfit_gap]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
from _common import machine, print_table, write_labelled, write_results  # noqa: E402
from alternatives import C_GRID, OPTIONS, _minilm_folder, split, tuned_lr  # noqa: E402

import headstart  # noqa: E402
from headstart.data import load_examples  # noqa: E402
from headstart.model import batched_outputs  # noqa: E402

OURS = {"default": {}, "fp32": {"precision": "fp32"}, "batch16": {"batch_size": 16}}


def _normalised(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=1, keepdims=True).clip(1e-12)


def lr_c1(x_train, y_train, x_test, seed):  # the package's head: LogisticRegression() on its unit-length embeddings
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(max_iter=3000).fit(_normalised(x_train), y_train).predict(_normalised(x_test))


def cv_standardised(x_train, y_train, x_test, seed):  # headstart's convex head, by scikit-learn
    return tuned_lr(x_train, y_train, x_test, seed)


def cv_normalised(x_train, y_train, x_test, seed):
    return tuned_lr(_normalised(x_train), y_train, _normalised(x_test), seed, scale=False)


def centroid(x_train, y_train, x_test, seed):  # headstart's pairs phase's own head
    labels = np.unique(y_train)
    means = np.stack([x_train[y_train == c].mean(0) for c in labels])
    return labels[((x_test[:, None, :] - means[None]) ** 2).sum(-1).argmin(1)]


HEADS = {"lr-c1-normalised": lr_c1, "cv-standardised": cv_standardised, "cv-normalised": cv_normalised,
         "centroid": centroid}
assert C_GRID  # the heads' grid is alternatives.py's


def package(train, test, seed):
    from datasets import Dataset
    from setfit import SetFitModel, Trainer, TrainingArguments

    model = SetFitModel.from_pretrained(_minilm_folder())
    model.model_body.max_seq_length = 128
    with tempfile.TemporaryDirectory() as out:
        arguments = TrainingArguments(output_dir=out, batch_size=16, num_epochs=1, num_iterations=20, seed=seed,
                                      report_to="none", show_progress_bar=False)
        Trainer(model=model, args=arguments, train_dataset=Dataset.from_dict(
            {"text": list(train.inputs), "label": list(train.labels)})).train()
    own = float(np.mean(np.array([str(p) for p in model.predict(list(test.inputs), batch_size=64)])
                        == np.array(test.labels)))
    encode = lambda texts: model.model_body.encode(list(texts), batch_size=64, convert_to_numpy=True)  # noqa: E731
    return own, encode(train.inputs), encode(test.inputs), {}


def ours(options):
    def method(train, test, seed):
        with tempfile.TemporaryDirectory() as folder:
            folder = Path(folder)
            run = headstart.fit(write_labelled(folder, "train", train), write_labelled(folder, "test", test),
                                strategy="setfit", seed=seed, out=folder / "run", show_progress=False,
                                **OPTIONS["text"], **options)
            import yaml

            notes = yaml.safe_load((folder / "run" / "config.yaml").read_text())["notes"]
        backbone = run.model.backbone
        encode = lambda texts: batched_outputs(backbone, backbone, list(texts), 64, "fp32",  # noqa: E731
                                               backbone.dim).numpy()
        return run.metrics["accuracy"], encode(train.inputs), encode(test.inputs), {"notes": notes}
    return method


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tasks", nargs="+", default=["rotten-tomatoes", "debates", "brown", "spam"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[100, 101, 102])
    parser.add_argument("--shots", type=int, default=16)
    parser.add_argument("--test", type=int, default=500)
    parser.add_argument("--ours", nargs="+", default=["default"], choices=sorted(OURS))
    parser.add_argument("--no-package", action="store_true")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--name", default="setfit_gap")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    bodies = ({} if args.no_package else {"package": package}) | {f"ours-{v}": ours(OURS[v]) for v in args.ours}
    facts, rows = machine(), []
    loaded = {task: load_examples(f"builtin:{task}") for task in args.tasks}
    for seed in args.seeds:
        for task, examples in loaded.items():
            train, test = split(examples, args.shots, 0, args.test, seed)
            y_train, y_test = np.array(train.labels), np.array(test.labels)
            for body, train_body in bodies.items():
                own, x_train, x_test, extra = train_body(train, test, seed)
                row = {"task": task, "seed": seed, "body": body, "own": own, **extra}
                for head, fit_head in HEADS.items():
                    row[head] = float(np.mean(fit_head(x_train, y_train, x_test, seed) == y_test))
                rows.append(row)
                print(f"{task} seed {seed} {body}: own {own:.3f} " + " ".join(
                    f"{h} {row[h]:.3f}" for h in HEADS), flush=True)
                write_results(args.name, {"args": vars(args), "machine": facts, "rows": rows})
    names = list(bodies)
    table = []
    for task in args.tasks:
        for body in names:
            mine = [r for r in rows if r["task"] == task and r["body"] == body]
            table.append([task, body, *(f"{np.mean([r[k] for r in mine]):.3f}" for k in ["own", *HEADS])])
    print_table(f"test accuracy by body and head, mean over seeds {args.seeds}", ["task", "body", "own", *HEADS],
                table)


if __name__ == "__main__":
    main()
