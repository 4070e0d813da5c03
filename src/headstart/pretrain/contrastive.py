"""contrastive: SimCLR on unlabelled images (Chen et al., 2020), scaled to a CPU and small images.

Every batch shows the network two strong augmentations of each image; a projection MLP maps the
features to 128 numbers, and the NT-Xent loss asks each view to find its partner among all 2N views.
The projection is thrown away afterwards: the features before it transfer better (the paper's finding).

    METHODS.get("contrastive")(backbone, unlabelled_images, PretrainOptions(temperature=0.1), True)
"""

from __future__ import annotations

import time

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from transformers import get_cosine_schedule_with_warmup

from ..backbones import Backbone
from ..checkpoints import Checkpoints, capture_random, restore_random
from ..data import Examples
from ..data.augment import augment_images
from ..errors import HeadstartError
from ..model import autocast
from ..train.engine import check_loss
from ..train.progress import progress_bar
from ._method import METHODS, PretrainOptions, Pretrained

__all__ = ["contrastive", "nt_xent", "projection_head", "DEFAULT_EPOCHS", "DEFAULT_LR"]

DEFAULT_EPOCHS = 20
DEFAULT_LR = 1e-3
PROJECTION_DIM = 128
WARMUP = 0.1         # share of the steps spent warming up, then cosine decay
WEIGHT_DECAY = 1e-4


def nt_xent(z: torch.Tensor, temperature: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(loss, positive-pair top-1 accuracy) of 2N projections where rows i and i+N are two views of one image.

    Cross-entropy over the 2N x 2N cosine similarities / temperature, each row's own similarity masked out,
    the partner view as the target.
    """
    n = z.shape[0] // 2
    z = F.normalize(z.float(), dim=1)
    similarity = (z @ z.T) / temperature
    self_mask = torch.eye(2 * n, dtype=torch.bool, device=z.device)
    similarity = similarity.masked_fill(self_mask, float("-inf"))
    partners = torch.cat([torch.arange(n, 2 * n), torch.arange(0, n)]).to(z.device)
    loss = F.cross_entropy(similarity, partners)
    accuracy = (similarity.argmax(dim=1) == partners).float().mean()
    return loss, accuracy


def projection_head(dim: int) -> nn.Module:
    """SimCLR's MLP dim -> dim -> 128; used for the loss only, discarded after pretraining."""
    return nn.Sequential(nn.Linear(dim, dim), nn.ReLU(inplace=True), nn.Linear(dim, PROJECTION_DIM))


def _batches(n: int, batch_size: int, generator: torch.Generator) -> list[np.ndarray]:
    """A shuffled epoch in batches; a lone last image joins the batch before it (a pair needs two images)."""
    order = torch.randperm(n, generator=generator).numpy()
    batches = [order[i:i + batch_size] for i in range(0, n, batch_size)]
    if len(batches) > 1 and len(batches[-1]) < 2:
        batches[-2] = np.concatenate([batches[-2], batches.pop()])
    return batches


@METHODS.register("contrastive")
def contrastive(backbone: Backbone, examples: Examples, options: PretrainOptions, show_progress: bool,
                checkpoints: Checkpoints | None = None) -> Pretrained:
    """Train every layer of `backbone` (BatchNorm statistics included) by NT-Xent on two views of each image."""
    if examples.modality != "image":
        raise HeadstartError(f"--method contrastive learns from images; {examples.source} holds {examples.modality}s")
    if len(examples) < 2:
        raise HeadstartError(f"{examples.source}: contrastive pretraining needs at least 2 images")
    epochs, lr = options.epochs or DEFAULT_EPOCHS, options.lr or DEFAULT_LR
    torch.manual_seed(options.seed)
    generator = torch.Generator().manual_seed(options.seed)  # shuffling and augmentation
    projector = projection_head(backbone.dim)
    backbone.set_trainable(0, update_bn_stats=True)  # from scratch or not, the statistics must follow the data
    backbone.train()
    projector.train()
    params = [p for p in backbone.parameters() if p.requires_grad] + list(projector.parameters())
    optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=WEIGHT_DECAY)
    steps = epochs * len(_batches(len(examples), options.batch_size, torch.Generator()))
    scheduler = get_cosine_schedule_with_warmup(optimizer, int(WARMUP * steps), steps)
    history, started = [], time.perf_counter()
    saved = checkpoints.latest() if checkpoints is not None else None
    if saved is not None:  # where an interrupted run's last epoch left off
        backbone.load_state_dict(saved["backbone"])
        projector.load_state_dict(saved["projector"])
        optimizer.load_state_dict(saved["optimizer"])
        scheduler.load_state_dict(saved["scheduler"])
        generator.set_state(saved["generator"])
        restore_random(saved["random"])
        history, started = saved["history"], started - saved["seconds"]
    for epoch in range(len(history) + 1, epochs + 1):
        t0, losses, accuracies = time.perf_counter(), [], []
        batches = _batches(len(examples), options.batch_size, generator)
        with progress_bar(f"contrastive epoch {epoch}/{epochs}", len(batches), show_progress) as advance:
            for index in batches:
                images = [examples.inputs[i] for i in index]
                views = augment_images(images, "strong", generator) + augment_images(images, "strong", generator)
                with autocast(options.precision):
                    z = projector(backbone(backbone.preprocess(views)))
                loss, accuracy = nt_xent(z, options.temperature)
                value = check_loss(loss.item(), f"contrastive epoch {epoch}", lr)
                loss.backward()
                optimizer.step()
                scheduler.step()
                optimizer.zero_grad(set_to_none=True)
                losses.append(value)
                accuracies.append(accuracy.item())
                advance(1)
        history.append({"epoch": epoch, "loss": float(np.mean(losses)), "positive_accuracy": float(np.mean(accuracies)),
                        "lr": scheduler.get_last_lr()[0], "seconds": round(time.perf_counter() - t0, 3)})
        if checkpoints is not None:
            checkpoints.save({"backbone": backbone.state_dict(), "projector": projector.state_dict(),
                              "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                              "generator": generator.get_state(), "random": capture_random(), "history": history,
                              "seconds": time.perf_counter() - started})
    backbone.set_trainable(None)
    backbone.eval()
    summary = {"epochs": epochs, "lr": lr, "temperature": options.temperature, "first_loss": history[0]["loss"],
               "final_loss": history[-1]["loss"], "final_positive_accuracy": history[-1]["positive_accuracy"],
               "chance_positive_accuracy": 1 / (2 * min(options.batch_size, len(examples)) - 1),
               "train_seconds": round(time.perf_counter() - started, 2)}
    return Pretrained(backbone, history, summary)
