"""The Backbone protocol: a feature extractor with ordered layer groups and its own preprocessing.

Every source (Hugging Face text encoders, timm image models, headstart runs) is adapted to this one
face, so freezing the first k groups, per-group learning rates and caching work the same for all.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import torch
from torch import nn


# The query and value projections' names in the families headstart reads (BERT-style, DistilBERT, ViT, LLaMA-
# style, GPT-2), as PEFT's defaults for them: adapting these two is LoRA's usual choice.
ATTENTION_PROJECTIONS = ("query", "value", "q_lin", "v_lin", "q_proj", "v_proj", "qkv", "c_attn")


@dataclass
class LayerGroup:
    """A slice of the backbone that freezes and trains as one: modules plus any parameters owned directly."""

    name: str
    modules: list[nn.Module]
    loose: list[nn.Parameter] = field(default_factory=list)

    def parameters(self) -> Iterator[nn.Parameter]:
        yield from self.loose
        for module in self.modules:
            yield from module.parameters()


@dataclass
class SourceHead:
    """The output layer a backbone was pretrained with (e.g. ImageNet's 1,000 classes): kept aside, never
    trained or saved with a TransferModel, so that LEEP / NCE can read the source task's predictions."""

    classes: list[str]
    weight: torch.Tensor  # [n_source_classes, dim]
    bias: torch.Tensor    # [n_source_classes]

    def logits(self, features: torch.Tensor) -> torch.Tensor:
        return features.float() @ self.weight.float().T + self.bias.float()


class Backbone(nn.Module):
    """Subclasses set `modality` and `dim` and implement the five methods below `forward`."""

    modality: str
    dim: int

    def __init__(self) -> None:
        super().__init__()
        self.trainable_from: int | None = None  # None: the whole backbone is frozen
        self.update_bn_stats = True  # False: BatchNorm layers normalise with their stored statistics
        self.source_head: SourceHead | None = None  # set by sources that keep their pretraining head

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Features [batch, dim] of a preprocessed batch."""
        raise NotImplementedError

    def layer_groups(self) -> list[LayerGroup]:
        """Groups in input order: stem first, last stage last."""
        raise NotImplementedError

    def preprocess(self, inputs: list) -> dict[str, torch.Tensor]:
        """Raw inputs (texts or HxW[x3] uint8 arrays) to the tensors `forward` takes."""
        raise NotImplementedError

    def randomize(self) -> None:
        """Re-initialise every weight as the architecture does from scratch (seed set by the caller)."""
        raise NotImplementedError

    def describe(self) -> dict:
        """JSON-able facts that rebuild this architecture and its preprocessing without a network."""
        raise NotImplementedError

    def save_assets(self, folder: Path) -> None:
        """Write what `describe` refers to (tokenizer, config) into folder. Default: nothing."""

    # -- shared machinery ------------------------------------------------------------------------
    def set_trainable(self, train_from: int | None, update_bn_stats: bool = True) -> None:
        """Train groups[train_from:], freeze the rest (None freezes all). Frozen groups stay in eval mode."""
        self.update_bn_stats = update_bn_stats
        for p in self.parameters():
            p.requires_grad_(False)
        groups = self.layer_groups()
        start = len(groups) if train_from is None else max(0, min(train_from, len(groups)))
        for group in groups[start:]:
            for p in group.parameters():
                p.requires_grad_(True)
        self.trainable_from = None if start == len(groups) else start
        self.train(self.training)

    def train(self, mode: bool = True) -> "Backbone":
        super().train(mode)
        if mode:
            # Frozen means frozen: BatchNorm statistics and dropout of frozen groups do not change.
            start = len(self.layer_groups()) if self.trainable_from is None else self.trainable_from
            for group in self.layer_groups()[:start]:
                for module in group.modules:
                    module.eval()
            if not self.update_bn_stats:
                for module in self.modules():
                    if isinstance(module, nn.modules.batchnorm._BatchNorm):
                        module.eval()
        return self

    def attention_projections(self) -> list[str]:
        """The names of the attention's query and value projections, which LoRA adapts (none in a ConvNet)."""
        return sorted({name.rsplit(".", 1)[-1] for name, _ in self.named_modules()} & set(ATTENTION_PROJECTIONS))

    def fingerprint(self) -> str:
        """A content hash of architecture, preprocessing and weights: the key of the feature cache."""
        digest = hashlib.sha256(json.dumps(self.describe(), sort_keys=True).encode())
        for name, tensor in sorted(self.state_dict().items()):
            digest.update(name.encode())
            digest.update(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
        return digest.hexdigest()
