"""Backbones: every pretrained source behind one protocol, found by name.

    load(BackboneSpec(name="minilm-l6"))          packaged all-MiniLM-L6-v2
    load(BackboneSpec(name="efficientnet-lite0"))  packaged ImageNet EfficientNet-Lite0 (also -lite1, -lite2)
    load(BackboneSpec(name="timm:resnet18", weights="r18.safetensors"))
    load(BackboneSpec(name="path/to/hf-folder"))   a local Hugging Face text encoder
    load(BackboneSpec(name="runs/my-run"))         the backbone of a headstart run
Any name + ":random" gives the same architecture with random weights.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from .._registry import Registry
from ..config import BackboneSpec
from ..errors import HeadstartError
from ..runs import RUN_MARKER
from ._base import Backbone, LayerGroup, SourceHead
from .classical import CLASSICAL_SOURCES, classical_features, rebuild_classical
from .hf_text import HFTextBackbone, minilm_folder
from .timm_image import TimmBackbone, efficientnet_lite, load_by_name, load_weights_file

__all__ = ["Backbone", "LayerGroup", "SourceHead", "BACKBONES", "load", "rebuild", "save_backbone",
           "classical_features"]

RANDOM_SUFFIX = ":random"

# name -> loader(spec, pretrained) for the named, packaged backbones
BACKBONES: Registry[Callable[[BackboneSpec, bool], Backbone]] = Registry("backbone")


@BACKBONES.register("minilm-l6")
def _minilm(spec: BackboneSpec, pretrained: bool) -> Backbone:
    return HFTextBackbone.from_folder(minilm_folder(), spec.max_length, weights=pretrained, long=spec.long)


def _register_lite(variant: int) -> None:
    @BACKBONES.register(f"efficientnet-lite{variant}")
    def _lite(spec: BackboneSpec, pretrained: bool) -> Backbone:
        return efficientnet_lite(variant, spec.image_size, weights=pretrained)


for _variant in (0, 1, 2):
    _register_lite(_variant)


def load(spec: BackboneSpec) -> Backbone:
    """The backbone a spec names, with its pretrained weights (random ones for NAME:random)."""
    name, pretrained = spec.name, True
    if name.endswith(RANDOM_SUFFIX):
        name, pretrained = name[: -len(RANDOM_SUFFIX)], False
    if spec.weights is not None and not (name.startswith("timm:") and pretrained):
        raise HeadstartError(f"--weights is for timm:ARCH only; '{spec.name}' "
                             f"{'has random weights' if not pretrained else 'brings its own weights'}: drop --weights")
    if name.startswith("timm:"):
        backbone = _timm(spec, name[len("timm:"):], pretrained)
    elif name in BACKBONES:
        backbone = BACKBONES.get(name)(spec, pretrained)
    elif Path(name).expanduser().is_dir():
        backbone = _from_folder(Path(name).expanduser(), spec)
        if not pretrained:
            backbone.randomize()
            backbone.source_head = None  # random features: the source task's classifier no longer applies
    else:
        raise HeadstartError(BACKBONES.unknown_message(
            name, ", timm:ARCH, a Hugging Face model folder or a headstart run directory"))
    return backbone


def _timm(spec: BackboneSpec, arch: str, pretrained: bool) -> Backbone:
    if not arch:
        raise HeadstartError("give the architecture after 'timm:', e.g. timm:resnet18 --weights resnet18.safetensors")
    backbone = TimmBackbone.create(arch, spec.image_size)
    if pretrained:
        if spec.weights is None:
            raise HeadstartError(f"timm:{arch} needs --weights FILE (safetensors or a state dict); nothing is "
                                 f"downloaded. For random weights use 'timm:{arch}{RANDOM_SUFFIX}'")
        load_by_name(backbone, load_weights_file(spec.weights), spec.weights)
    return backbone


def _from_folder(folder: Path, spec: BackboneSpec) -> Backbone:
    from ..model import TransferModel  # a run's model holds a backbone: import here to avoid a cycle

    model_dir = folder / "model"
    if is_backbone_folder(folder):
        return load_backbone_folder(folder)
    if (model_dir / RUN_MARKER).is_file():
        run = TransferModel.load(model_dir)
        # A classifier's head is its source task's: kept aside for LEEP / NCE, never trained. Other heads
        # (a regression's, a multi-label's sigmoids) are no source of class probabilities.
        classes = run.task.source_classes()
        if classes is not None:
            run.backbone.source_head = SourceHead(classes, run.head.weight.detach().clone(),
                                                  run.head.bias.detach().clone())
        return run.backbone
    if (folder / "config.json").is_file():
        return HFTextBackbone.from_folder(folder, spec.max_length, long=spec.long)
    raise HeadstartError(f"{folder} is not a headstart run directory (no model/{RUN_MARKER}), a pretrained backbone "
                         f"folder (no {BACKBONE_MARKER}) or a Hugging Face model folder (no config.json)")


from .saved import BACKBONE_MARKER, is_backbone_folder, load_backbone_folder, save_backbone  # noqa: E402


def rebuild(description: dict, folder: Path) -> Backbone:
    """The architecture a saved `describe()` names, with random weights (the caller loads the saved ones)."""
    source = description.get("source")
    if source == "hf-text":
        return HFTextBackbone.from_folder(folder / description["folder"], description["max_length"], weights=False,
                                          long=description.get("long", "truncate"))
    if source == "timm":
        return TimmBackbone.create(description["arch"], description["image_size"], description["mean"], description["std"])
    if source in CLASSICAL_SOURCES:
        return rebuild_classical(description, folder)
    raise HeadstartError(f"{folder}: unknown backbone source '{source}'; was it saved by a newer headstart?")
