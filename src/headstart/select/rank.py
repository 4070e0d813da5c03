"""rank: score candidate backbones on a labelled task from their frozen features, before any training.

    results = headstart.rank("builtin:digits", backbones=["efficientnet-lite0", "efficientnet-lite0:random"],
                             image_size=32, out="runs/rank")
    results[0]["backbone"], results[0]["logme"]

Each backbone embeds TRAIN once (through the feature cache) and is scored by every metric; the
list comes back best first by the first metric. The scores estimate transferability: they are not
accuracies, and they compare backbones on this data set only.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Literal, Optional

import numpy as np
import torch
from accelerate.utils import set_seed
from pydantic import Field, ValidationError

from .. import __version__, backbones as backbone_sources
from .. import train as engine
from ..config import BackboneSpec, DataSpec, TableColumns, TrainSpec, help_for, seed_field
from ..data import Examples, load_examples
from ..data.splits import check_classes, has_classes, train_subset
from ..errors import HeadstartError
from ..precision import resolve_precision
from ..runs import atomic_path, claim_out, staged_run_dir, write_json, write_yaml
from ..tasks import TASKS
from .scores import DEFAULT_METRICS, METRICS

__all__ = ["rank", "RankSpec", "RANK_FILE", "NOTE"]

RANK_FILE = "rank.json"
NOTE = ("these are transferability estimates, not accuracies: higher is better, and they compare backbones "
        "on this data set only")


class RankSpec(TableColumns):
    """Every option of a ranking, validated at once; saved as config.yaml."""

    train: str = Field(description=help_for(DataSpec, "train"))
    backbones: list[str] = Field(description="Candidate backbones, comma-separated: any --backbone name "
                                             "(NAME:random too), at least one.")
    metrics: list[str] = Field(list(DEFAULT_METRICS), description="Scores, comma-separated, from logme, hscore, "
                                                                  "leep, nce; the table is sorted by the first.")
    train_size: Optional[int] = Field(None, gt=1, description=help_for(DataSpec, "train_size"))
    image_size: Optional[int] = Field(None, ge=8, le=1024, description=help_for(BackboneSpec, "image_size"))
    max_length: int = Field(128, ge=8, le=4096, description=help_for(BackboneSpec, "max_length"))
    long: Literal["truncate", "chunk"] = Field("truncate", description=help_for(BackboneSpec, "long"))
    precision: Optional[str] = Field(None, description=help_for(TrainSpec, "precision"))
    seed: int = seed_field("Seed for the --train-size subset and for NAME:random weights")
    batch_size: int = Field(64, ge=1, description="Examples per embedding batch.")
    headstart_version: Optional[str] = None

    @classmethod
    def build(cls, **options) -> "RankSpec":
        """Validate every option and report all problems in one line."""
        try:
            spec = cls.model_validate(options)
        except ValidationError as err:
            problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']} (got {e.get('input')!r})"
                                 for e in err.errors())
            raise HeadstartError(f"invalid rank options: {problems}") from None
        spec.backbones = _names(spec.backbones, "--backbones")
        spec.metrics = _names(spec.metrics, "--metrics")
        for name in spec.metrics:
            METRICS.get(name)  # unknown names fail here, with the closest known one
        return spec


def _names(items: list[str], option: str) -> list[str]:
    names = [item.strip() for item in items]
    if not names or not all(names):
        raise HeadstartError(f"{option} needs a comma-separated list of names without empty entries "
                             f"(got '{','.join(items)}')")
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise HeadstartError(f"{option} lists '{twice[0]}' more than once; give each name once")
    return names


def rank(train: str, backbones: list[str] | str, metrics: list[str] | str | None = None, *,
         train_size: int | None = None, image_size: int | None = None, max_length: int = 128, long: str = "truncate",
         precision: str | None = None, seed: int = 0, batch_size: int = 64, out: str | Path | None = None,
         overwrite: bool = False, show_progress: bool = True, text_column: str | None = None,
         image_column: str | None = None, label_column: str | None = None) -> list[dict]:
    """Score every backbone on TRAIN's labels; a list of {backbone, <metric>..., seconds}, best first.

    >>> rank("reviews.csv", backbones="minilm-l6,minilm-l6:random", metrics="logme")[0]["backbone"]
    """
    split = lambda v: v.split(",") if isinstance(v, str) else list(v)
    spec = RankSpec.build(train=str(train), backbones=split(backbones),
                          metrics=list(DEFAULT_METRICS) if metrics is None else split(metrics),
                          train_size=train_size, image_size=image_size, max_length=max_length, long=long,
                          precision=precision, seed=seed, batch_size=batch_size, text_column=text_column,
                          image_column=image_column, label_column=label_column)
    with claim_out(out, overwrite, [spec.train, *spec.backbones]):  # before any work, so a clash costs nothing
        spec.precision = resolve_precision(spec.precision)
        spec.headstart_version = __version__

        examples = _load(spec)
        candidates = _load_backbones(spec, examples)  # every name and modality checked before the slow part
        results = [_score(name, backbone, loaded, examples, spec, show_progress)
                   for name, (backbone, loaded) in candidates.items()]
        results = _best_first(results, spec.metrics[0])

        if out is not None:
            with staged_run_dir(Path(out), overwrite) as stage:
                write_json(stage / RANK_FILE, results)
                write_yaml(stage / "config.yaml", {"rank": spec.model_dump(mode="json"), "notes": [NOTE]})
                plot_ranking(results, spec.metrics, stage / "rank.png", f"backbones on {spec.train} (n = {len(examples)})")
        return results


def _load(spec: RankSpec) -> Examples:
    examples = load_examples(spec.train, columns=spec.columns())
    if spec.train_size is not None:
        examples = train_subset(examples, spec.train_size, spec.seed)
    check_classes(examples, 1, "to rank backbones")
    return examples


def _load_backbones(spec: RankSpec, examples: Examples) -> dict[str, tuple]:
    """name -> (backbone, seconds to load); a backbone of the wrong modality stops the ranking here."""
    loaded = {}
    for name in spec.backbones:
        started = time.perf_counter()
        set_seed(spec.seed)  # NAME:random gets the same weights whatever its place in the list
        backbone = backbone_sources.load(BackboneSpec(name=name, image_size=spec.image_size,
                                                      max_length=spec.max_length, long=spec.long))
        if backbone.modality != examples.modality:
            raise HeadstartError(f"backbone '{name}' reads {backbone.modality}s but {spec.train} holds "
                                 f"{examples.modality}s; rank {examples.modality} backbones only")
        loaded[name] = (backbone, time.perf_counter() - started)
    return loaded


def _score(name: str, backbone, load_seconds: float, examples: Examples, spec: RankSpec, show: bool) -> dict:
    started = time.perf_counter()
    if show:
        engine.progress.console.print(f"ranking {name}", highlight=False)
    features = engine.embed(backbone, examples.inputs, spec.batch_size, spec.precision, show)
    head = backbone.source_head  # None for random weights: backbones.load drops it with them
    probs = None if head is None else torch.softmax(head.logits(features), dim=1).double().numpy()
    feats, labels = features.double().numpy(), np.asarray(examples.labels, dtype=object)
    task = TASKS.get(examples.kind).from_labels(examples.labels)
    classes = has_classes(examples)
    row = {"backbone": name}
    for metric in map(METRICS.get, spec.metrics):
        if (metric.needs_source and probs is None) or (metric.needs_classes and not classes):
            row[metric.name] = None
        else:  # a score of classes reads the labels; the others the task's targets, as a matrix
            row[metric.name] = metric.compute(feats, labels if metric.needs_classes else task.evidence(examples.labels),
                                              probs)
    row["seconds"] = round(load_seconds + time.perf_counter() - started, 3)
    return row


def _best_first(results: list[dict], key: str) -> list[dict]:
    """Sorted by `key`, highest first; a backbone without that score (null) goes last."""
    return sorted(results, key=lambda r: (r[key] is None, -(r[key] or 0.0)))


def plot_ranking(results: list[dict], metrics: list[str], path: Path, title: str) -> None:
    """One dot panel per metric, backbones in ranking order (best on top); scores can be negative, so no bars."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(metrics), figsize=(2.8 * len(metrics) + 2, 0.4 * len(results) + 1.6),
                             sharey=True, squeeze=False)
    names = [r["backbone"] for r in results][::-1]
    for ax, metric in zip(axes[0], metrics):
        values = [r[metric] for r in results][::-1]
        known = [(v, i) for i, v in enumerate(values) if v is not None]
        ax.plot([v for v, _ in known], [names[i] for _, i in known], "o", color="tab:blue")
        for i, v in enumerate(values):
            if v is None:
                ax.text(0.02, i, "n/a (no source head)", va="center", fontsize=7, color="grey",
                        transform=ax.get_yaxis_transform())
        ax.set_yticks(range(len(names)), names)
        ax.margins(x=0.15, y=0.3)
        ax.set_title(f"{metric} (higher is better)", fontsize=9)
        ax.grid(alpha=0.3)
    fig.suptitle(title)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
