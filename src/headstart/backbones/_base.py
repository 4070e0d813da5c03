"""The Backbone protocol: a feature extractor with ordered layer groups and its own preprocessing.

Every source (Hugging Face text encoders, timm image models, headstart runs) is adapted to this one
face, so freezing the first k groups, per-group learning rates and caching work the same for all.
"""

from __future__ import annotations

import hashlib
import json
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import numpy as np
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

    def tensors(self) -> Iterator[tuple[str, torch.Tensor]]:
        """Every weight and buffer of the group, named within it: what its outputs depend on."""
        for i, parameter in enumerate(self.loose):
            yield f"loose.{i}", parameter
        for m, module in enumerate(self.modules):
            for name, tensor in module.state_dict().items():
                yield f"{m}.{name}", tensor


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

    @contextmanager
    def evaluating(self) -> Iterator[None]:
        """Eval mode for a block (embedding, a check), then the training mode it had, frozen groups still frozen."""
        was_training = self.training
        self.eval()
        try:
            yield
        finally:
            self.train(was_training)

    def cut(self, k: int) -> "Cut | str":
        """The backbone split after its first k layer groups, for the frozen-prefix cache (see Cut), or why this
        source cannot be split there (the engine then runs the frozen groups on every batch, and says so)."""
        return f"a {type(self).__name__} is not split between layer groups"

    def attention_projections(self) -> list[str]:
        """The names of the attention's query and value projections, which LoRA adapts (none in a ConvNet)."""
        return sorted({name.rsplit(".", 1)[-1] for name, _ in self.named_modules()} & set(ATTENTION_PROJECTIONS))

    def fingerprint(self, groups: int | None = None) -> str:
        """A content hash of architecture, preprocessing and weights: the key of the feature cache. With `groups`,
        of the first that many layer groups' weights only: what the activations after them depend on."""
        digest = hashlib.sha256(json.dumps(self.describe(), sort_keys=True).encode())
        if groups is None:
            tensors = sorted(self.state_dict().items())
        else:
            digest.update(f"|the first {groups} groups".encode())
            tensors = [(f"{g}.{name}", t) for g, group in enumerate(self.layer_groups()[:groups])
                       for name, t in group.tensors()]
        for name, tensor in tensors:
            digest.update(name.encode())
            digest.update(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
        return digest.hexdigest()


class Cut(nn.Module):
    """A backbone split after its first k layer groups (the frozen prefix), for training what comes after them on
    activations computed once. `forward` runs the prefix on a preprocessed batch and returns its activations as
    rows [rows, width] (a text: a row per token; an image: one row, its feature map flattened); `suffix` runs the
    remaining groups on such rows, regrouped by example, and returns the backbone's features. Sources that can be
    split subclass this in their own file (Backbone.cut)."""

    def __init__(self, backbone: Backbone, k: int, width: int):
        super().__init__()
        self.backbone, self.k, self.width = backbone, k, width

    def rows(self, inputs: list) -> np.ndarray:
        """How many rows each input's activations take at the cut."""
        return np.ones(len(inputs), dtype=np.int64)

    def suffix(self, rows: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
        """Features [examples, dim] from the rows of consecutive examples (counts: each one's number of rows)."""
        raise NotImplementedError

    def fingerprint(self) -> str:
        """The cache key of the activations: the prefix's architecture, preprocessing and weights, and where it ends."""
        return self.backbone.fingerprint(self.k)

    @torch.no_grad()
    def reproduces(self, inputs: list) -> bool:
        """Whether prefix then suffix give the backbone's own features on these inputs (eval mode, fp32): checked
        once on a few examples before the engine relies on the cut, so an architecture whose forward the split
        does not follow falls back to the plain path instead of training on something else."""
        try:
            with self.backbone.evaluating():
                device = next(self.backbone.parameters()).device
                batch = {key: value.to(device) for key, value in self.backbone.preprocess(inputs).items()}
                whole = self.backbone(batch)
                split = self.suffix(self(batch), torch.from_numpy(self.rows(inputs)))
            return split.shape == whole.shape and torch.allclose(split, whole, atol=1e-4, rtol=1e-3)
        except (RuntimeError, TypeError, ValueError, IndexError, AssertionError):
            return False
