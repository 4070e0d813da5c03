"""A phase on pairs of examples: the backbone learns to put examples of one class close together and the others
apart (SetFit's contrastive fine-tuning, Tunstall et al., 2022), before a head is fitted on its features.

Every epoch draws PAIRS_PER_EXAMPLE pairs per training example, at most MAX_PAIRS, so that many rows or many
classes stay bounded in time and memory: anchors come from the classes in turn (each class gets an equal share,
whatever its size), each paired with an example of its own class (target 1) or of another (target 0),
alternately. The loss is SetFit's: the squared difference between the pair's cosine similarity and its target.
With several processes each takes whole pairs (Accelerate splits a batch's items, and an item is a pair).

The phase trains no head. What it leaves behind, and what validation scores, is the nearest-centroid classifier
of the current features written into the head: logit_c = s (x . m_c - |m_c|^2 / 2), with m_c the class's mean
training feature and s one over the mean squared distance to it (a linear head, so saving, predicting and a
following phase see a plain one). The next phase (setfit's L-BFGS head) replaces it where it validates better.
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader

from ..data import TaskData
from ..data.augment import augment_images
from ..distributed import processes
from ..errors import HeadstartError
from ..model import TransferModel, batched_outputs

__all__ = ["pair_inputs", "draw_pairs", "check_pairs", "pairs_per_batch", "PAIRS_PER_EXAMPLE", "MAX_PAIRS"]

PAIRS_PER_EXAMPLE = 40  # SetFit's default: 20 iterations of one positive and one negative pair per example
MAX_PAIRS = 2560        # per epoch: 160 steps of 16 pairs, whatever the number of examples or classes


def check_pairs(data: TaskData) -> np.ndarray:
    """The training examples' classes, or one line saying why this task's examples cannot be paired."""
    classes = data.task.pair_classes(data.targets(data.train))
    if classes is None:
        raise HeadstartError(f"strategy setfit pairs examples by their class, and a {data.task.kind} target gives no "
                             "single class per example: use lp-ft, full or linear-probe-cv")
    return classes


def draw_pairs(classes: np.ndarray, n_pairs: int, rng: np.random.Generator) -> np.ndarray:
    """[n_pairs, 3] rows (anchor, partner, target): anchors' classes in turn, even rows of the same class (target 1,
    another member where the class has one), odd rows of another class (target 0)."""
    labels = np.unique(classes)
    members = [np.flatnonzero(classes == c) for c in labels]
    order = np.concatenate([rng.permutation(len(labels)) for _ in range(math.ceil(n_pairs / len(labels)))])[:n_pairs]
    sizes = np.array([len(m) for m in members])
    anchor_at = rng.integers(0, sizes[order])
    positive = np.arange(n_pairs) % 2 == 0
    # a partner of the same class: another member (shifted past the anchor), or the anchor itself when alone
    same_at = np.where(sizes[order] > 1, rng.integers(0, np.maximum(sizes[order] - 1, 1)), 0)
    same_at = np.where((sizes[order] > 1) & (same_at >= anchor_at), same_at + 1, same_at)
    other = (order + 1 + rng.integers(0, max(len(labels) - 1, 1), n_pairs)) % len(labels)
    other_at = rng.integers(0, sizes[other])
    pick = lambda cls, at: np.array([members[c][i] for c, i in zip(cls, at)], dtype=np.int64)  # noqa: E731
    partner = np.where(positive, pick(order, same_at), pick(other, other_at))
    return np.stack([pick(order, anchor_at), partner, positive.astype(np.int64)], axis=1)


def pairs_per_batch(batch_size: int, n_processes: int = 1) -> int:
    """--batch-size counts examples a step and a pair holds two, so a batch is half as many pairs (the default 32:
    16 pairs, SetFit's own batch), a multiple of the processes that split it. On exploration seeds 100-101
    (bench/setfit_gap.py) 16 pairs a step instead of 32, twice the steps, was +1.7 points on average (5 runs)."""
    return max(n_processes, batch_size // 2 // n_processes * n_processes)


class _PairBatches:
    """A batch sampler of pairs: each epoch new pairs, drawn from the phase's shuffling generator (so a checkpoint's
    state replays them), batch_size pairs a batch."""

    def __init__(self, classes: np.ndarray, batch_size: int, generator: torch.Generator):
        self.classes, self.batch_size, self.generator = classes, batch_size, generator
        self.n_pairs = min(PAIRS_PER_EXAMPLE * len(classes), MAX_PAIRS)

    def __len__(self) -> int:
        return -(-self.n_pairs // self.batch_size)

    def __iter__(self):
        rng = np.random.default_rng(int(torch.randint(2 ** 31, (1,), generator=self.generator)))
        pairs = [tuple(row) for row in draw_pairs(self.classes, self.n_pairs, rng).tolist()]
        for start in range(0, len(pairs), self.batch_size):
            yield pairs[start:start + self.batch_size]


class _Pairs(torch.utils.data.Dataset):
    """The items of a pair batch are the pairs themselves (anchor, partner, target); collate reads their inputs."""

    def __init__(self, n_pairs: int):
        self.n_pairs = n_pairs

    def __len__(self):
        return self.n_pairs

    def __getitem__(self, pair):
        return pair


class _PairSimilarity(nn.Module):
    """The cosine similarity of each pair's features; a batch holds anchor and partner of each pair in turn."""

    def __init__(self, model: TransferModel):
        super().__init__()
        self.model = model

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        features = F.normalize(self.model.backbone(batch).float(), dim=-1)
        return (features[0::2] * features[1::2]).sum(-1)


def _pair_loss(similarity: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    return F.mse_loss(similarity.float(), targets.float())


def pair_inputs(model: TransferModel, data: TaskData, batch_size: int, precision: str, augment: str,
                shuffle: torch.Generator, eval_batch: int
                ) -> tuple[nn.Module, DataLoader, Callable[[], torch.Tensor], Callable]:
    """(module to train, batches of pairs, validation logits(), loss) for a phase on pairs of training examples."""
    classes = check_pairs(data)
    inputs = data.train.inputs

    def collate(pairs):
        chosen = [inputs[i] for a, b, _ in pairs for i in (a, b)]
        if augment != "none":
            chosen = augment_images(chosen, augment, shuffle)
        return model.backbone.preprocess(chosen), torch.tensor([same for _, _, same in pairs])

    batches = _PairBatches(classes, pairs_per_batch(batch_size, processes()), shuffle)
    loader = DataLoader(_Pairs(batches.n_pairs), batch_sampler=batches, collate_fn=collate)
    return (_PairSimilarity(model), loader, lambda: _centroid_logits(model, data, classes, precision, eval_batch),
            _pair_loss)


@torch.no_grad()
def _centroid_logits(model: TransferModel, data: TaskData, classes: np.ndarray, precision: str,
                     batch_size: int) -> torch.Tensor:
    """Write the nearest-centroid classifier of the current features into the head; its validation logits."""
    model.eval()
    backbone = model.backbone
    train = batched_outputs(backbone, backbone, data.train.inputs, batch_size, precision, backbone.dim)
    y = torch.from_numpy(classes)
    out = model.head.weight.shape[0]
    counts = torch.bincount(y, minlength=out).float()
    means = torch.zeros(out, train.shape[1]).index_add_(0, y, train) / counts.clamp(min=1).unsqueeze(1)
    spread = ((train - means[y]) ** 2).sum(1).mean().clamp(min=1e-12)
    weight, bias = means / spread, -0.5 * (means ** 2).sum(1) / spread
    bias[counts == 0] = -1e4  # a class with no training example is never the nearest
    model.head.weight.copy_(weight.to(model.head.weight))
    model.head.bias.copy_(bias.to(model.head.bias))
    return model.logits(data.val.inputs, batch_size, precision)
