"""Backbone folders: a backbone saved on its own, as `headstart pretrain` writes it, loadable by path.

    folder/headstart-backbone.json   architecture + preprocessing (`describe()`), modality, version, provenance
    folder/backbone.safetensors      the weights (and the source head's, when the backbone keeps one)
    folder/hf/                       tokenizer and config of a text backbone

Everything but the output layer is kept: `fit --backbone folder` attaches a new head sized to its task.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from .. import __version__
from ..checksums import seal, verify
from ..errors import HeadstartError
from ..runs import atomic_path, atomic_write_text
from ._base import Backbone, SourceHead

__all__ = ["BACKBONE_MARKER", "BACKBONE_WEIGHTS", "save_backbone", "load_backbone_folder", "is_backbone_folder"]

BACKBONE_MARKER = "headstart-backbone.json"
BACKBONE_WEIGHTS = "backbone.safetensors"
_HEAD_PREFIX = "source_head."


def is_backbone_folder(folder: Path) -> bool:
    return (Path(folder) / BACKBONE_MARKER).is_file()


def save_backbone(backbone: Backbone, folder: Path, provenance: dict | None = None) -> None:
    """Write the backbone (weights, preprocessing, assets) into folder; `provenance` says how it was made."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    backbone.save_assets(folder)
    tensors = {k: v.detach().cpu().contiguous().clone() for k, v in backbone.state_dict().items()}
    facts = {"headstart_version": __version__, "modality": backbone.modality, "backbone": backbone.describe(),
             "provenance": provenance or {}}
    if backbone.source_head is not None:
        tensors[_HEAD_PREFIX + "weight"] = backbone.source_head.weight.detach().float().contiguous()
        tensors[_HEAD_PREFIX + "bias"] = backbone.source_head.bias.detach().float().contiguous()
        facts["source_classes"] = list(backbone.source_head.classes)
    with atomic_path(folder / BACKBONE_WEIGHTS) as tmp:
        save_file(tensors, str(tmp))
    atomic_write_text(folder / BACKBONE_MARKER, json.dumps(seal(folder, facts, BACKBONE_MARKER), indent=2) + "\n")


def load_backbone_folder(folder: Path) -> Backbone:
    """The backbone saved in folder, with its weights (and source head, if it has one)."""
    from . import rebuild  # the registry of sources lives in the package; import here to avoid a cycle

    folder = Path(folder)
    marker = folder / BACKBONE_MARKER
    try:
        facts = json.loads(marker.read_text(encoding="utf-8"))
        description = facts["backbone"]
    except (OSError, ValueError, KeyError, TypeError):
        raise HeadstartError(f"{marker} is damaged (not the JSON 'headstart pretrain' writes); pretrain again") from None
    verify(folder, facts, BACKBONE_MARKER, "pretrain again")
    backbone = rebuild(description, folder)
    try:
        tensors = load_file(str(folder / BACKBONE_WEIGHTS))
    except (OSError, SafetensorError) as err:
        raise HeadstartError(f"cannot load {folder / BACKBONE_WEIGHTS} ({err}); pretrain again") from None
    head = {k[len(_HEAD_PREFIX):]: tensors.pop(k) for k in list(tensors) if k.startswith(_HEAD_PREFIX)}
    own = backbone.state_dict()
    missing, unexpected = set(own) - set(tensors), set(tensors) - set(own)
    if missing or unexpected:
        raise HeadstartError(f"{folder / BACKBONE_WEIGHTS} does not fit its architecture ({len(missing)} missing, "
                             f"{len(unexpected)} unexpected tensors); pretrain again")
    with torch.no_grad():
        backbone.load_state_dict(tensors)
    if head and "source_classes" in facts:
        backbone.source_head = SourceHead(list(facts["source_classes"]), head["weight"], head["bias"])
    backbone.eval()
    return backbone
