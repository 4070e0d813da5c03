"""`fit --strategy auto` against what a user would pick instead, on the same splits (issue 15's proof).

Per task and seed: a stratified test set of --test examples, and from the rest a training set of --shots labels
per class (`--shots 16`) or a stratified --size examples (`--shots 0`: "full", up to 2,000). Every method sees
exactly these examples and is scored on the same test set; each runs in this process with an empty feature
cache, and its CPU seconds (this process, all threads) and wall seconds are recorded.

- `auto`: `headstart.fit(train, test, strategy="auto")` (default budget), MiniLM at 128 tokens for texts,
  EfficientNet-Lite0 at 32 px for images; the strategy it chose is recorded.
- `tfidf-lr` (a): texts, TF-IDF of words and word pairs (sublinear tf) + LogisticRegression; images, the raw
  pixels standardised + LogisticRegression; C from 0.01 to 100 by stratified 5-fold GridSearchCV.
- `frozen-lr` (b): the frozen pretrained features (texts: sentence-transformers' encode of the same MiniLM
  folder, as a user of that library would; images: EfficientNet-Lite0's pooled features through timm) standardised
  + LogisticRegression, C as in (a).
- `trainer` (c): a Hugging Face Trainer full fine-tune, `AutoModelForSequenceClassification` from the MiniLM
  folder, lr 5e-5, batch 16, 3 epochs, 128 tokens, fp32, Trainer's defaults otherwise (AdamW, linear decay). For
  images the same recipe as a plain loop on timm's EfficientNet-Lite0 and a new linear head (AdamW, linear decay,
  batch 16, 3 epochs) at --image-lr (default 1e-3, a usual rate for fine-tuning a ConvNet, set before any run; 5e-5,
  the text recipe's, was not tried).
- `setfit` (d): the `setfit` package (`pip install setfit`; skipped when absent), offline on the local MiniLM
  folder, batch 16, 1 epoch, 20 iterations (its paper's defaults), 128 tokens, its logistic-regression head;
  accuracy computed here. Texts at --shots > 0 only.
- `fit:NAME`: `headstart.fit(strategy=NAME)` with the same options as auto, to explore a strategy;
  `fit:NAME@epochs=3,lr=5e-4` passes fit's options too (numbers as numbers).

Summary per task: mean test accuracy over seeds per method, the best reference (a)-(d) by mean, auto minus it
per seed (mean, 95% t-interval, paired t-test p), and the mean CPU seconds of auto and of the Trainer.

Targets (issue 15): auto at or above the best reference within the noise (the paired interval reaches 0) on every
task, at 16 per class and at full size, and its CPU seconds at most the Trainer's.

    python bench/alternatives.py [--shots 16 | --shots 0 --size 2000] [--tasks ...] [--seeds 0 1 2 3 4]
                                 [--methods auto tfidf-lr frozen-lr trainer setfit fit:setfit] [--name NAME]
                                 [--threads 1] [--resume]   # --resume: skip the rows a cut-short run wrote
    python bench/alternatives.py --merge results/A.json results/B.json --name NAME   # one table of both (a
        # later file's methods join or replace an earlier one's on the same task and seed)
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _common import RESULTS, Stopwatch, check_quiet, cold_cache, machine, print_table, write_labelled, write_results  # noqa: E402

import headstart  # noqa: E402
from headstart.data import load_examples  # noqa: E402
from headstart.data.splits import few_shot, stratified_split, stratified_subset  # noqa: E402

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # every model here is a local folder
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

OPTIONS = {"text": dict(backbone="minilm-l6", max_length=128), "image": dict(backbone="efficientnet-lite0",
                                                                              image_size=32)}
REFERENCES = ("tfidf-lr", "frozen-lr", "trainer", "setfit")
C_GRID = [0.01, 0.1, 1.0, 10.0, 100.0]


def split(examples, shots: int, size: int, test: int, seed: int):
    rest, held_out = stratified_split(examples, test / len(examples), seed)
    train = few_shot(rest, shots, seed=seed) if shots else stratified_subset(rest, min(size, len(rest) - 1), seed)
    return train, held_out


def tuned_lr(x_train, y_train, x_test, seed: int, scale: bool = True) -> np.ndarray:
    """Test predictions of a LogisticRegression whose C is chosen by stratified 5-fold cross-validation."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GridSearchCV, StratifiedKFold
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    steps = ([StandardScaler()] if scale else []) + [LogisticRegression(max_iter=3000)]
    smallest = min(np.unique(y_train, return_counts=True)[1])
    search = GridSearchCV(make_pipeline(*steps), {"logisticregression__C": C_GRID},
                          cv=StratifiedKFold(min(5, smallest), shuffle=True, random_state=seed))
    return search.fit(x_train, y_train).predict(x_test)


def pixels(images) -> np.ndarray:
    return np.stack([np.asarray(image, dtype=np.float32).ravel() for image in images])


def tfidf_lr(train, test, seed: int, args) -> list:
    if train.modality == "image":
        return list(tuned_lr(pixels(train.inputs), np.array(train.labels), pixels(test.inputs), seed))
    from sklearn.feature_extraction.text import TfidfVectorizer

    vectoriser = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=1)
    x_train = vectoriser.fit_transform(train.inputs)
    return list(tuned_lr(x_train, np.array(train.labels), vectoriser.transform(test.inputs), seed, scale=False))


def _minilm_folder() -> str:
    from headstart.backbones import minilm_folder

    return str(minilm_folder())


def _image_backbone():
    from headstart import backbones
    from headstart.config import BackboneSpec

    return backbones.load(BackboneSpec(name="efficientnet-lite0", image_size=32))


def frozen_lr(train, test, seed: int, args) -> list:
    if train.modality == "image":
        import torch

        backbone = _image_backbone().eval()

        def features(images):
            with torch.no_grad():
                return torch.cat([backbone(backbone.preprocess(images[i:i + 64]))
                                  for i in range(0, len(images), 64)]).numpy()
        x_train, x_test = features(list(train.inputs)), features(list(test.inputs))
    else:
        from sentence_transformers import SentenceTransformer

        encoder = SentenceTransformer(_minilm_folder(), device="cpu")
        encoder.max_seq_length = 128
        x_train, x_test = encoder.encode(list(train.inputs)), encoder.encode(list(test.inputs))
    return list(tuned_lr(x_train, np.array(train.labels), x_test, seed))


def trainer(train, test, seed: int, args) -> list:
    classes = sorted(set(train.labels))
    if train.modality == "image":
        return _image_trainer(train, test, seed, classes, args)
    from datasets import Dataset
    from transformers import (AutoModelForSequenceClassification, AutoTokenizer, DataCollatorWithPadding, Trainer,
                              TrainingArguments)

    folder = _minilm_folder()
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForSequenceClassification.from_pretrained(folder, num_labels=len(classes))

    def tokenised(examples, labelled=True):
        data = {"text": list(examples.inputs)}
        if labelled:
            data["label"] = [classes.index(label) for label in examples.labels]
        return Dataset.from_dict(data).map(lambda b: tokenizer(b["text"], truncation=True, max_length=128),
                                           batched=True, remove_columns=["text"])
    with tempfile.TemporaryDirectory() as out:
        arguments = TrainingArguments(output_dir=out, learning_rate=5e-5, per_device_train_batch_size=16,
                                      per_device_eval_batch_size=64, num_train_epochs=3, seed=seed, report_to=[],
                                      save_strategy="no", logging_strategy="no", use_cpu=True, disable_tqdm=True)
        hf = Trainer(model=model, args=arguments, train_dataset=tokenised(train),
                     data_collator=DataCollatorWithPadding(tokenizer))
        hf.train()
        logits = hf.predict(tokenised(test, labelled=False)).predictions
    return [classes[i] for i in np.asarray(logits).argmax(-1)]


def _image_trainer(train, test, seed, classes, args) -> list:
    """Trainer's recipe on timm's EfficientNet-Lite0: AdamW, linear decay to 0, batch 16, 3 epochs, fp32."""
    import torch
    import torch.nn.functional as F

    torch.manual_seed(seed)
    backbone = _image_backbone()
    head = torch.nn.Linear(backbone.dim, len(classes))
    params = list(backbone.parameters()) + list(head.parameters())
    optimizer = torch.optim.AdamW(params, lr=args.image_lr)
    x = backbone.preprocess(list(train.inputs))
    y = torch.tensor([classes.index(label) for label in train.labels])
    steps = 3 * -(-len(y) // 16)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1 - step / steps)
    generator = torch.Generator().manual_seed(seed)
    backbone.train()
    for _ in range(3):
        for index in torch.randperm(len(y), generator=generator).split(16):
            loss = F.cross_entropy(head(backbone({k: v[index] for k, v in x.items()})), y[index])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
    backbone.eval()
    with torch.no_grad():
        logits = torch.cat([head(backbone(backbone.preprocess(list(test.inputs)[i:i + 64])))
                            for i in range(0, len(test), 64)])
    return [classes[i] for i in logits.argmax(-1)]


def setfit(train, test, seed: int, args) -> list | None:
    if train.modality != "text" or not args.shots:
        return None
    try:
        from datasets import Dataset
        from setfit import SetFitModel, Trainer, TrainingArguments
    except ImportError:
        return None
    model = SetFitModel.from_pretrained(_minilm_folder())
    model.model_body.max_seq_length = 128
    with tempfile.TemporaryDirectory() as out:  # its checkpoints: not in the working directory
        arguments = TrainingArguments(output_dir=out, batch_size=16, num_epochs=1, num_iterations=20, seed=seed,
                                      report_to="none", show_progress_bar=False)
        Trainer(model=model, args=arguments, train_dataset=Dataset.from_dict(
            {"text": list(train.inputs), "label": list(train.labels)})).train()
    return [str(label) for label in model.predict(list(test.inputs), batch_size=64)]


def _options(text: str) -> dict:
    """'epochs=3,lr=5e-4' -> {'epochs': 3, 'lr': 0.0005}: fit's options after a method's '@'."""
    def value(v: str):
        for kind in (int, float):
            try:
                return kind(v)
            except ValueError:
                pass
        return v
    return {k: value(v) for k, _, v in (item.partition("=") for item in text.split(",") if item)}


def headstart_fit(method_name: str):
    strategy, _, extra = method_name.partition("@")

    def method(train, test, seed: int, args) -> tuple[float, str]:
        """(test accuracy as fit reports it, the strategy it trained)."""
        with tempfile.TemporaryDirectory() as folder:
            folder = Path(folder)
            train_path, test_path = write_labelled(folder, "train", train), write_labelled(folder, "test", test)
            run = headstart.fit(train_path, test_path, strategy=strategy, seed=seed, out=folder / "run",
                                show_progress=False, **{**OPTIONS[train.modality], **_options(extra)})
            return run.metrics["accuracy"], run.plan.strategy
    return method


METHODS = {"tfidf-lr": tfidf_lr, "frozen-lr": frozen_lr, "trainer": trainer, "setfit": setfit}


def run_one(method: str, train, test, seed: int, args) -> dict | None:
    headstart_method = method == "auto" or method.startswith("fit:")
    function = headstart_fit(method.removeprefix("fit:")) if headstart_method else METHODS[method]
    with cold_cache(), Stopwatch() as watch:
        cpu = time.process_time()
        out = function(train, test, seed, args)
        cpu = time.process_time() - cpu
    if out is None:
        return None
    if isinstance(out, tuple):
        accuracy, chose = out
    else:
        if len(out) != len(test):
            raise SystemExit(f"{method}: {len(out)} predictions for {len(test)} test examples")
        accuracy, chose = float(np.mean(np.array(out) == np.array(test.labels))), None
    row = {"accuracy": accuracy, "cpu_seconds": cpu,
           "seconds": watch.seconds, "others": watch.others}
    if chose is not None:
        row["strategy"] = chose
    return row


def summarise(rows: list[dict], methods: list[str]) -> tuple[list[list], list[dict]]:
    from scipy import stats

    table, verdicts = [], []
    for task in dict.fromkeys(r["task"] for r in rows):
        mine = sorted((r for r in rows if r["task"] == task), key=lambda r: r["seed"])
        means = {m: np.mean([r[m]["accuracy"] for r in mine]) for m in methods if all(r.get(m) for r in mine)}
        references = {m: v for m, v in means.items() if m in REFERENCES}
        cells = [task, str(mine[0]["n_train"])] + [f"{means[m]:.3f}" if m in means else "n/a" for m in methods]
        verdict = {"task": task, "means": means}
        if "auto" in means and references:
            best = max(references, key=references.get)
            diff = np.array([r["auto"]["accuracy"] - r[best]["accuracy"] for r in mine])
            half = stats.t.ppf(0.975, len(diff) - 1) * diff.std(ddof=1) / np.sqrt(len(diff)) if len(diff) > 1 \
                else float("nan")
            p = stats.ttest_rel([r["auto"]["accuracy"] for r in mine], [r[best]["accuracy"] for r in mine]).pvalue \
                if len(diff) > 1 and diff.std() > 0 else float("nan")
            auto_cpu = np.mean([r["auto"]["cpu_seconds"] for r in mine])
            trainer_cpu = np.mean([r["trainer"]["cpu_seconds"] for r in mine]) if "trainer" in means else None
            verdict.update(best=best, difference=float(diff.mean()), half_width=float(half), p_value=float(p),
                           met=bool(diff.mean() + half >= 0) if len(diff) > 1 else None,
                           auto_cpu=float(auto_cpu), trainer_cpu=trainer_cpu,
                           cpu_met=None if trainer_cpu is None else bool(auto_cpu <= trainer_cpu),
                           chose=[r["auto"].get("strategy") for r in mine])
            cells += [best, f"{100 * diff.mean():+.1f} ± {100 * half:.1f} (p {p:.2f})",
                      f"{auto_cpu:.0f} / {trainer_cpu:.0f}" if trainer_cpu is not None else f"{auto_cpu:.0f} / n/a",
                      ",".join(sorted(set(verdict["chose"])))]
        table.append(cells)
        verdicts.append(verdict)
    return table, verdicts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tasks", nargs="+", default=["rotten-tomatoes", "debates", "brown", "spam", "mnist"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2, 3, 4])
    parser.add_argument("--shots", type=int, default=16, help="labels per class; 0: --size examples")
    parser.add_argument("--size", type=int, default=2000, help="training examples with --shots 0")
    parser.add_argument("--test", type=int, default=500)
    parser.add_argument("--methods", nargs="+", default=["auto", *REFERENCES])
    parser.add_argument("--image-lr", type=float, default=1e-3, help="the image Trainer-recipe's learning rate")
    parser.add_argument("--name", default=None, help="results file name (default alternatives_16 / _full)")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads (two runs side by side on 2 cores: 1 each, so neither oversubscribes)")
    parser.add_argument("--resume", action="store_true",
                        help="keep the rows of an earlier, cut-short run of the same --name that hold every method")
    parser.add_argument("--merge", nargs="+", type=Path, default=None,
                        help="summarise the rows of these results files (runs of other seeds) instead of running")
    args = parser.parse_args()
    name = args.name or f"alternatives_{args.shots or 'full'}"
    if args.merge:
        parts = [json.loads(path.read_text()) for path in args.merge]
        # One row per task and seed: a later file's methods join (or replace) an earlier one's on the same split
        merged: dict[tuple, dict] = {}
        for row in (row for part in parts for row in part["rows"]):
            merged.setdefault((row["task"], row["seed"]), {}).update(row)
        rows = sorted(merged.values(), key=lambda r: r["seed"])
        for key in ("shots", "size", "test"):
            setattr(args, key, parts[0]["args"][key])
        args.methods = list(dict.fromkeys(m for part in parts for m in part["args"]["methods"]))
        args.seeds = sorted({r["seed"] for r in rows})
        args.merge = [str(path) for path in args.merge]
        report(rows, args, name, parts[0]["machine"], merged=args.merge)
        return
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    facts, rows = machine(), resumed(name, args) if args.resume else []
    done = {(r["task"], r["seed"]) for r in rows}
    loaded = {task: load_examples(f"builtin:{task}") for task in args.tasks}
    for seed in args.seeds:  # seed by seed, so that a run cut short has every task for its first seeds
        for task, examples in loaded.items():
            if (task, seed) in done:
                continue
            train, test = split(examples, args.shots, args.size, args.test, seed)
            row = {"task": task, "seed": seed, "n_train": len(train), "n_test": len(test)}
            for method in args.methods:
                row[method] = run_one(method, train, test, seed, args)
            rows.append(row)
            print(f"{task} seed {seed} ({len(train)} train): " + ", ".join(
                f"{m} {row[m]['accuracy']:.3f} ({row[m]['cpu_seconds']:.0f} cpu s"
                + (f", {row[m]['strategy']}" if "strategy" in row[m] else "") + ")"
                for m in args.methods if row[m]), flush=True)
            write_results(name, {"args": vars(args), "machine": facts, "rows": rows, "partial": True})
    report(rows, args, name, facts)


def resumed(name: str, args) -> list[dict]:
    """The rows of bench/results/NAME.json made with the same split settings that hold every requested method."""
    path = RESULTS / f"{name}.json"
    if not path.exists():
        return []
    earlier = json.loads(path.read_text())
    if any(earlier["args"][key] != getattr(args, key) for key in ("shots", "size", "test")):
        raise SystemExit(f"--resume: {path} was made with other --shots/--size/--test; choose another --name")
    rows = [r for r in earlier["rows"] if r["task"] in args.tasks and r["seed"] in args.seeds
            and all(m in r for m in args.methods)]
    print(f"resuming {path}: {len(rows)} task-seed rows kept", flush=True)
    return rows


def report(rows: list[dict], args, name: str, facts: dict, merged: list[str] | None = None) -> None:
    table, verdicts = summarise(rows, args.methods)
    print_table(f"test accuracy, mean over seeds {args.seeds} ({args.shots or 'full'} "
                f"{'per class' if args.shots else f'up to {args.size}'}; {args.test} test examples)",
                ["task", "train", *args.methods, "best reference", "auto - best, points (95%)", "CPU s auto / trainer",
                 "auto chose"], table)
    check_quiet([r[m]["others"] for r in rows for m in args.methods if r.get(m)])
    write_results(name, {"args": vars(args), "machine": facts, "rows": rows, "summary": verdicts,
                         **({"merged": merged} if merged else {})})


if __name__ == "__main__":
    main()
