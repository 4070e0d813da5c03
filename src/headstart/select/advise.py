"""advise: how many labels, how close the data is to the backbone's pretraining, and so which strategy.

    advice = headstart.advise("builtin:digits", backbone="efficientnet-lite0", image_size=32, out="runs/advice")
    advice.quadrant, advice.strategy, advice.reason

The rule of thumb (Yosinski et al., 2014; the CS231n transfer-learning notes): with few labels, train
as little as possible; the further the data is from the pretraining data, the more of the backbone
has to adapt. Each quadrant of (small | large) x (similar | different) maps to one strategy.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from .. import __version__, backbones
from ..backbones.classical import classical_features
from ..baselines import baseline_refusal, classical_matrix
from ..config import BackboneSpec, RunSpec
from ..data import Examples, load_examples
from ..data.splits import check_classes, stratified_subset, train_subset
from ..errors import HeadstartError
from ..tasks import TASKS, as_text
from ..model import check_modality
from ..precision import resolve_precision
from ..runs import claim_out, staged_run_dir, write_json
from ..train import embed
from ._measure import PROBE_DIMS, probe_accuracy, probe_r2, proxy_a_distance
from ._rule import CLASSICAL_AHEAD, NO_BETTER_THAN_RANDOM_AT, SIMILAR_AT, SMALL_BELOW, probe_similarity, recommend

__all__ = ["Advice", "advise", "advise_examples", "text_pairs", "ADVICE_FILE"]

ADVICE_FILE = "advice.json"
PROBE_EXAMPLES = 1000   # the probe's stratified sample: enough to rank features, seconds to embed
DOMAIN_EXAMPLES = 500   # per side for the proxy A-distance


@dataclass
class Advice:
    """What advise measured and concluded; `to_dict()` is advice.json."""

    train: str
    backbone: str
    source: str | None
    n_examples: int
    n_classes: int
    labels_per_class: dict        # min, median, smallest_class
    size: str                     # small | large
    similarity: float             # 0 (nothing alike) .. 1 (the same)
    similarity_method: str        # domain-distance (with --source) | probe-vs-random
    similar: bool
    pretrained_beats_random: bool
    quadrant: str                 # e.g. small+similar
    strategy: str
    alternatives: list[str]
    reason: str
    n_groups: int
    measurements: dict = field(default_factory=dict)
    thresholds: dict = field(default_factory=dict)
    seconds: float = 0.0
    headstart_version: str = __version__

    def to_dict(self) -> dict:
        return asdict(self)


def advise(train: str, *, backbone: str, source: str | None = None, train_size: int | None = None,
           image_size: int | None = None, max_length: int = 128, long: str = "truncate", weights: str | None = None,
           precision: str | None = None, seed: int = 0, out: str | Path | None = None, overwrite: bool = False,
           show_progress: bool = True, text_column: str | None = None, image_column: str | None = None,
           label_column: str | None = None) -> Advice:
    """Measure size and similarity of TRAIN for a backbone, and recommend a strategy; advice.json in `out`."""
    options = RunSpec.build({"data": {"train": train, "train_size": train_size,  # every problem at once, as fit
                                      "text_column": text_column, "image_column": image_column,
                                      "label_column": label_column},
                             "backbone": {"name": backbone, "weights": weights, "image_size": image_size,
                                          "max_length": max_length, "long": long},
                             "train": {"precision": precision, "seed": seed}}, source="advise options")
    with claim_out(out, overwrite, [train, source, *options.backbone.inputs()]):  # before any work
        examples = load_examples(train, columns=options.data.columns())
        if train_size is not None:
            examples = train_subset(examples, train_size, seed)
        source_examples = load_examples(source, labelled=False, columns=options.data.columns()) if source else None
        advice = advise_examples(examples, options.backbone, source_examples, resolve_precision(precision), seed, show_progress)
        if out is not None:
            with staged_run_dir(Path(out), overwrite) as stage:
                write_json(stage / ADVICE_FILE, advice.to_dict())
                from ._plot import plot_advice  # matplotlib only when a picture is asked for
                plot_advice(advice, stage / "advice.png")
        return advice


def advise_examples(examples: Examples, spec: BackboneSpec, source: Examples | None, precision: str, seed: int = 0,
                    show_progress: bool = True) -> Advice:
    """The advice for labelled examples already in memory (auto calls this on its training split only)."""
    t0 = time.perf_counter()
    check_classes(examples, 2, "to cross-validate a linear probe")
    task = TASKS.get(examples.kind).from_labels(examples.labels)
    pretrained = backbones.load(spec)
    check_modality(pretrained, spec.name, examples.source, examples.modality)
    if source is not None:
        if source.modality != examples.modality:  # the source is what is wrong: the backbone suits TRAIN
            raise HeadstartError(f"--source {source.source} holds {source.modality}s and {examples.source} holds "
                                 f"{examples.modality}s; give {examples.modality}s as --source, the data the "
                                 "backbone was pretrained on")
        check_modality(pretrained, spec.name, f"--source {source.source}", source.modality)
    counts = task.label_counts(examples.labels)
    sample = stratified_subset(examples, PROBE_EXAMPLES, seed)
    features = embed(pretrained, sample.inputs, 64, precision, show_progress)
    classes = task.probe_classes(sample.labels)  # None: the probe is a regression on the task's evidence
    probe = lambda x: (probe_accuracy(x, classes, seed) if classes is not None  # noqa: E731
                       else probe_r2(x, task.evidence(sample.labels), seed))
    measurements = {"probe_examples": len(sample), "probe_score": "accuracy" if classes is not None else "R²"}
    measurements["probe_pretrained"], measurements["probe_folds"] = probe(features.numpy())
    random_features = embed(_random_twin(spec, seed), sample.inputs, 64, precision, show_progress)
    measurements["probe_random"] = probe(random_features.numpy())[0]
    if baseline_refusal(task) is None:  # the same probe on the classical baseline's features (fitted on the sample)
        measurements["probe_classical"] = probe(classical_matrix(classical_features(sample), sample.inputs))[0]
    # What a constant guess scores: the commonest class's share (accuracy), or 0 (R² of the mean).
    measurements["chance"] = max(counts.values()) / sum(counts.values()) if classes is not None else 0.0
    measurements["probe_similarity"] = probe_similarity(measurements["probe_pretrained"], measurements["probe_random"])
    similarity, method = measurements["probe_similarity"], "probe-vs-random"
    if source is not None:
        rng = np.random.default_rng(seed)
        # one row per example on both sides: a tokenised sentence reads as its text here
        own = embed(pretrained, [as_text(examples.inputs[i]) for i in rng.permutation(len(examples))[:DOMAIN_EXAMPLES]],
                    64, precision, show_progress)
        theirs = embed(pretrained, [as_text(source.inputs[i]) for i in rng.permutation(len(source))[:DOMAIN_EXAMPLES]],
                       64, precision, show_progress)
        pad, error = proxy_a_distance(theirs.numpy(), own.numpy(), seed)
        measurements.update(proxy_a_distance=pad, domain_error=error, domain_examples=min(len(own), len(theirs)))
        similarity, method = 1.0 - pad / 2.0, "domain-distance"
    n_groups = len(pretrained.layer_groups())
    decision = recommend(labels_per_class=float(np.median(list(counts.values()))), similarity=similarity,
                         probe_pretrained=measurements["probe_pretrained"], probe_random=measurements["probe_random"],
                         n_groups=n_groups, method=method, text_pairs=text_pairs(examples.modality, task),
                         probe_classical=measurements.get("probe_classical"))
    smallest = min(counts, key=counts.get)
    return Advice(
        train=examples.source, backbone=spec.name, source=None if source is None else source.source,
        n_examples=len(examples), n_classes=len(counts),
        labels_per_class={"min": counts[smallest], "median": float(np.median(list(counts.values()))),
                          "smallest_class": smallest},
        size=decision.size, similarity=round(similarity, 4), similarity_method=method, similar=decision.similar,
        pretrained_beats_random=decision.pretrained_beats_random, quadrant=decision.quadrant,
        strategy=decision.strategy, alternatives=decision.alternatives, reason=decision.reason, n_groups=n_groups,
        measurements={k: round(v, 4) if isinstance(v, float) else v for k, v in measurements.items()},
        thresholds={"small_below_labels_per_class": SMALL_BELOW, "similar_at": SIMILAR_AT[method],
                    "classical_ahead_by": CLASSICAL_AHEAD,
                    "no_better_than_random_at": NO_BETTER_THAN_RANDOM_AT,
                    "probe_dims": PROBE_DIMS, "probe_examples_max": PROBE_EXAMPLES,
                    "domain_examples_max": DOMAIN_EXAMPLES},
        seconds=round(time.perf_counter() - t0, 2))


def text_pairs(modality: str, task) -> bool:
    """Whether the examples are texts with one class each: what setfit, the few-shot text rule, pairs."""
    return modality == "text" and task.pair_classes(np.empty(0, dtype=np.int64)) is not None


def _random_twin(spec: BackboneSpec, seed: int):
    """The same architecture with random weights (NAME:random), drawn from `seed` without touching the global RNG."""
    name = spec.name if spec.name.endswith(":random") else spec.name + ":random"
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        return backbones.load(spec.model_copy(update={"name": name, "weights": None}))

