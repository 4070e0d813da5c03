"""headstart pretrain: make your own backbone from your own data, then reuse it with `fit --backbone OUT`.

    result = headstart.pretrain("unlabelled_images/", method="contrastive", backbone="timm:resnet10t:random",
                                image_size=32, epochs=20, out="backbones/simclr")
    headstart.fit("labelled/", backbone="backbones/simclr", strategy="linear-probe")

The recipe reads top to bottom: check the output folder, validate the options, load the backbone and
the data, run the method (a file in this folder, registered in METHODS), and write the backbone folder
with its config, history, summary and curve. Methods never touch the disk; they report the epochs and
learning rate they resolved in their summary ("epochs", "lr") so that config.yaml records them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from accelerate.utils import set_seed

from .. import __version__, backbones, strategies
from ..checkpoints import resumable, resume_out
from ..data import Examples, load_examples
from ..data.splits import train_subset
from ..errors import HeadstartError
from ..model import check_modality
from ..precision import resolve_precision
from ..runs import CONFIG_FILE, HISTORY_FILE, METRICS_FILE, claim_out, default_run_dir, staged_run_dir, write_json, \
    write_jsonl, write_yaml
from ..train.progress import console
from ._curve import plot_pretrain_curve
from ._method import METHODS, PretrainOptions, Pretrained
from ._spec import RANDOM_INIT_STRATEGY, PretrainSpec

__all__ = ["pretrain", "pretrain_spec", "pretrain_from_spec", "PretrainResult", "PretrainSpec", "PretrainOptions", "Pretrained", "METHODS",
           "CURVE_FILE"]

CURVE_FILE = "pretrain_curve.png"
# What each method reads; None: either modality.
_MODALITY = {"contrastive": "image", "mlm": "text", "supervised": None}


@dataclass
class PretrainResult:
    out: Path              # the backbone folder: pass it as `fit --backbone OUT`
    history: list[dict]    # one row per epoch
    summary: dict          # the final figures, as in metrics.json


def pretrain(data: str, *, method: str, backbone: str, epochs: int | None = None, lr: float | None = None,
             batch_size: int = 32, image_size: int | None = None, max_length: int = 128, long: str = "truncate",
             weights: str | None = None,
             mask_prob: float = 0.15, temperature: float = 0.1, strategy: str | None = None,
             train_size: int | None = None, precision: str | None = None, seed: int = 0,
             out: str | Path | None = None, overwrite: bool = False, show_progress: bool = True,
             resume: bool = False, text_column: str | None = None, image_column: str | None = None,
             label_column: str | None = None) -> PretrainResult:
    """Pretrain `backbone` on DATA by `method` and save it as a backbone folder that fit and compare reuse."""
    spec = pretrain_spec(data, method=method, backbone=backbone, epochs=epochs, lr=lr, batch_size=batch_size,
                         image_size=image_size, max_length=max_length, long=long, weights=weights, mask_prob=mask_prob,
                         temperature=temperature, strategy=strategy, train_size=train_size, precision=precision,
                         seed=seed, text_column=text_column, image_column=image_column, label_column=label_column)
    return pretrain_from_spec(spec, out, overwrite, show_progress, resume)


def pretrain_from_spec(spec: PretrainSpec, out: str | Path | None = None, overwrite: bool = False,
                       show_progress: bool = True, resume: bool = False) -> PretrainResult:
    """`pretrain` from a PretrainSpec (e.g. a backbone folder's config.yaml): the same spec gives the same backbone.
    Every epoch is checkpointed beside `out`; `resume=True` continues an interrupted run."""
    out = resume_out(out, resume) or default_run_dir(spec.backbone.name, spec.method)
    with claim_out(out, overwrite, [spec.data, *spec.backbone.inputs()]), \
            resumable(out, "pretrain", spec.to_dict(), resume, overwrite) as checkpoints:  # before any work
        spec = _resolve(spec)
        run = METHODS.get(spec.method)

        set_seed(spec.seed)  # a :random backbone's initial weights are part of the run
        model = backbones.load(spec.backbone)
        _check_backbone(spec, model)
        if spec.backbone.image_size is None and "image_size" in model.describe():  # the backbone's own, recorded
            spec = spec.model_copy(update={"backbone": spec.backbone.model_copy(
                update={"image_size": model.describe()["image_size"]})})
        examples = _load_data(spec)
        needs = _MODALITY.get(spec.method)
        if needs is not None and examples.modality != needs:  # the data is what is wrong: the backbone suits the method
            other = next(m for m, reads in _MODALITY.items() if reads == examples.modality)
            raise HeadstartError(f"--method {spec.method} reads {needs}s, and {spec.data} holds {examples.modality}s; "
                                 f"give {needs}s, or --method {other} (or supervised) for {examples.modality}s")
        check_modality(model, spec.backbone.name, spec.data, examples.modality)
        console.print(f"pretraining {spec.backbone.name} by {spec.method} on {len(examples)} examples of {spec.data}",
                      highlight=False)
        inherited_head = model.source_head
        result: Pretrained = run(model, examples, spec.options(), show_progress, checkpoints.child(spec.method))
        if result.backbone.source_head is inherited_head:
            result.backbone.source_head = None  # e.g. ImageNet's classifier: it read the features before they changed

        for key in ("epochs", "lr"):  # the method's defaults, once resolved, belong in the config
            if getattr(spec, key) is None and result.summary.get(key) is not None:
                spec = spec.model_copy(update={key: result.summary[key]})
        summary = {"method": spec.method, "n_examples": len(examples), **result.summary}
        with staged_run_dir(out, overwrite) as stage:
            backbones.save_backbone(result.backbone, stage, provenance={
                "method": spec.method, "data": spec.data, "start": spec.backbone.name, "options": spec.to_dict(),
                "summary": summary})
            write_yaml(stage / CONFIG_FILE, {"pretrain": spec.to_dict()})
            write_jsonl(stage / HISTORY_FILE, result.history)
            write_json(stage / METRICS_FILE, summary)
            plot_pretrain_curve(result.history, stage / CURVE_FILE, f"{spec.backbone.name} / {spec.method}")
        return PretrainResult(out, result.history, summary)


def pretrain_spec(data: str, *, method: str, backbone: str, epochs: int | None = None, lr: float | None = None,
                  batch_size: int = 32, image_size: int | None = None, max_length: int = 128, long: str = "truncate",
                  weights: str | None = None, mask_prob: float = 0.15, temperature: float = 0.1,
                  strategy: str | None = None, train_size: int | None = None, precision: str | None = None,
                  seed: int = 0, text_column: str | None = None, image_column: str | None = None,
                  label_column: str | None = None) -> PretrainSpec:
    """The validated PretrainSpec of pretrain's options; every problem is reported at once."""
    return PretrainSpec.build({
        "data": str(data), "method": method, "epochs": epochs, "lr": lr, "batch_size": batch_size,
        "backbone": {"name": backbone, "weights": weights, "image_size": image_size, "max_length": max_length,
                     "long": long},
        "mask_prob": mask_prob, "temperature": temperature, "strategy": strategy, "train_size": train_size,
        "precision": precision, "seed": seed, "text_column": text_column, "image_column": image_column,
        "label_column": label_column})


def _resolve(spec: PretrainSpec) -> PretrainSpec:
    """Fill in the defaults that depend on the machine or the backbone; refuse options the method ignores."""
    if spec.method not in METHODS:
        METHODS.get(spec.method)  # raises: unknown method, with the known ones
    strategy = spec.strategy
    if spec.method == "supervised":
        strategy = strategy or (RANDOM_INIT_STRATEGY if spec.backbone.name.endswith(":random") else "full")
        strategies.plan(strategy, spec.epochs, spec.lr)  # an unknown strategy fails here, before any work
    elif strategy is not None:
        raise HeadstartError(f"--strategy {strategy}: only --method supervised trains with a strategy; drop it")
    return spec.model_copy(update={"strategy": strategy, "precision": resolve_precision(spec.precision),
                                   "headstart_version": __version__})


def _check_backbone(spec: PretrainSpec, model: backbones.Backbone) -> None:
    needs = _MODALITY.get(spec.method)
    if needs is not None and model.modality != needs:
        example = "timm:resnet10t:random or efficientnet-lite0" if needs == "image" else "minilm-l6"
        raise HeadstartError(f"--method {spec.method} pretrains {needs} backbones but '{spec.backbone.name}' reads "
                             f"{model.modality}s; pick {'an' if needs == 'image' else 'a'} {needs} backbone, "
                             f"e.g. {example}")
    if spec.method == "supervised":
        strategies.check_fits(strategies.plan(spec.strategy, spec.epochs, spec.lr), model)


def _load_data(spec: PretrainSpec) -> Examples:
    """Labelled examples for supervised; inputs only (labels dropped) for the other methods."""
    labelled = spec.method == "supervised"
    examples = load_examples(spec.data, labelled=labelled, columns=spec.columns())
    if not labelled:
        examples = Examples(examples.inputs, examples.ids, examples.modality, None, examples.source)
    if spec.train_size is not None and spec.train_size < len(examples):
        if labelled:
            examples = train_subset(examples, spec.train_size, spec.seed)
        else:
            keep = np.random.default_rng(spec.seed).permutation(len(examples))[:spec.train_size]
            examples = examples.subset(sorted(keep))
    if len(examples) < 2:
        raise HeadstartError(f"{spec.data} holds {len(examples)} example; pretraining needs at least 2 "
                             "(and works best with hundreds)")
    return examples


from . import contrastive, mlm, supervised  # noqa: E402,F401  (each registers itself)
