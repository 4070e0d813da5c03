"""The run directory's README.md: what the model is, what it was trained on, how well it did, how to use it.

Written from what fit saved (the spec as run, the plan, the data's sizes, the metrics with their interval), so the
card never says anything the run's files do not.
"""

from __future__ import annotations

import time
from pathlib import Path

from .config import RunSpec
from .data import TaskData
from .strategies import Plan
from .train import History

__all__ = ["MODEL_CARD", "model_card"]

MODEL_CARD = "README.md"
SHOWN_CLASSES = 20


def _labels(task) -> str:
    classes = getattr(task, "classes", None) or getattr(task, "tags", None)
    if not classes:
        return ""
    shown = ", ".join(f"`{c}`" for c in classes[:SHOWN_CLASSES])
    more = f" and {len(classes) - SHOWN_CLASSES} more" if len(classes) > SHOWN_CLASSES else ""
    return f"; {len(classes)} {'tags' if hasattr(task, 'tags') else 'labels'}: {shown}{more}"


def _number(value) -> str:
    return "n/a" if value is None else f"{value:.4f}"


def model_card(run_dir: Path, spec: RunSpec, plan: Plan, n_groups: int, data: TaskData, history: History,
               metrics: dict, auto: bool) -> str:
    """The card's Markdown text; `metrics` as fit writes them (with their 'interval')."""
    interval = metrics["interval"]
    task, backbone = data.task, spec.backbone
    size = (f"image size {backbone.image_size or 'its own'}" if data.modality == "image"
            else f"at most {backbone.max_length} tokens a text")
    test = spec.data.test or f"a stratified {spec.data.test_fraction:.0%} hold-out of the training data"
    chosen = " (chosen by `--strategy auto`: the race is in `auto.json`)" if auto else ""
    score = interval["metric"]
    rows = [f"| {name} | {value} |" for name, value in task.headline(metrics).items()]
    noise = (f"{score} {_number(metrics.get(score))}, {interval['level']:.0%} bootstrap interval "
             f"{_number(interval['low'])} to {_number(interval['high'])} ({interval['resamples']} resamples of the "
             f"{len(data.test)} test examples): the spread to expect from another test set of this size.")
    notes = "\nNotes from loading the data:\n\n" + "".join(f"- {note}\n" for note in data.notes) if data.notes else ""
    return f"""# {run_dir.name}: {backbone.name} / {plan.strategy}, {task.kind}

Trained with headstart {spec.headstart_version} on {time.strftime('%Y-%m-%d')}. Every option is in `config.yaml`;
`headstart fit --config {run_dir}/config.yaml` trains it again (same seed, same model).

## Data

- Training: `{spec.data.train}`, {len(data.train)} examples to train on and {len(data.val)} to validate on
  (early stopping, the best epoch){_labels(task)}.
- Test: {test if spec.data.test is None else f'`{test}`'}, {len(data.test)} examples, never seen in training.
{notes}
## Model

- Backbone: `{backbone.name}` ({data.modality}s, {size}){f", weights `{backbone.weights}`" if backbone.weights else ""}.
- Strategy: `{plan.strategy}`{chosen}, {spec.train.precision}, seed {spec.train.seed}:

```
{plan.describe(n_groups)}
```

- Best validation {task.score_name}: {_number(history.best_val_accuracy)} at epoch {history.best_epoch}
  (`history.jsonl`, `learning_curve.png`); {history.seconds:.1f} s of training.

## Test results

| metric | value |
|---|---|
{chr(10).join(rows)}

{noise} All figures: `metrics.json`.

## Use

```
headstart predict {run_dir} INPUTS --output predictions.csv
headstart evaluate {run_dir} LABELLED_DATA
headstart export {run_dir} --format onnx
```

In Python: `headstart.predict("{run_dir}", "INPUTS")`. `model/` holds all that prediction needs (safetensors weights,
preprocessing{", tokenizer" if data.modality == "text" else ""}), checksummed and read without a network.
"""
