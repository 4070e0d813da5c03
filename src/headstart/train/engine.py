"""The engine: runs a Plan's phases on Accelerate, with no knowledge of which strategy made the plan.

Per phase: set which groups train, pick the data path (cached features when the backbone is frozen,
raw inputs otherwise), AdamW with one learning rate per group, warm-up + cosine, early stopping on
validation accuracy, and the best weights restored at the end of the phase.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator

import numpy as np
import torch
from accelerate import Accelerator
from accelerate.utils import set_seed
from torch.utils.data import DataLoader, TensorDataset
from transformers import get_cosine_schedule_with_warmup

from ..config import TrainSpec
from ..data import Examples, TaskData
from ..errors import HeadstartError
from ..model import TransferModel, autocast
from ..strategies import Phase, Plan, check_fits
from .cache import embed
from .history import EpochRecord, History
from .progress import progress_bar

__all__ = ["run", "steps", "check_loss"]

EVAL_BATCH = 64


def check_loss(value: float, where: str, lr: float) -> float:
    """The loss, or one clear line when it is not a finite number: nothing trained on from there is worth saving."""
    if not math.isfinite(value):
        raise HeadstartError(f"{where}: the loss is {value} (not a finite number), so training has diverged and "
                             f"nothing is saved; the learning rate ({lr:g}) is likely too high: try a smaller --lr")
    return value


class _RawInputs(torch.utils.data.Dataset):
    """Indices into raw inputs; batches are preprocessed by the backbone in the collate step."""

    def __init__(self, examples: Examples, targets: np.ndarray, backbone):
        self.inputs, self.targets, self.backbone = examples.inputs, targets, backbone

    def __len__(self):
        return len(self.inputs)

    def __getitem__(self, i):
        return i

    def collate(self, index: list[int]):
        return self.backbone.preprocess([self.inputs[i] for i in index]), torch.from_numpy(self.targets[index])


def run(model: TransferModel, data: TaskData, plan: Plan, spec: TrainSpec, precision: str,
        show_progress: bool = True) -> History:
    """Train `model` in place by the plan; returns the per-epoch history. The best weights are kept."""
    history = None
    for _, history in steps(model, data, plan, spec, precision, show_progress):
        pass
    return history


def steps(model: TransferModel, data: TaskData, plan: Plan, spec: TrainSpec, precision: str,
          show_progress: bool = True) -> Iterator[tuple[int, History]]:
    """`run`, one epoch at a time: yields (phase number, history so far) after every epoch, and the final
    history once the best weights are restored. A caller may stop early (auto races candidates this way)."""
    set_seed(spec.seed)
    check_fits(plan, len(model.backbone.layer_groups()))  # the one check; --dry-run and pretrain call it early
    if plan.init == "random":
        model.backbone.randomize()
    accelerator = Accelerator()
    history, started = History(), time.perf_counter()
    y_val = data.targets(data.val)
    best = {"accuracy": -1.0, "loss": math.inf, "state": None}
    for number, phase in enumerate(plan.phases):
        model.backbone.set_trainable(phase.train_from, phase.update_bn_stats)
        if model.backbone.trainable_from is None:
            history.cached_phases.append(phase.name)
        net, loader, val_logits = _phase_inputs(model, data, spec, precision, number, show_progress)
        validate = lambda: data.task.validate(val_logits(), y_val)  # noqa: E731 (the phase's own logits)
        optimizer = torch.optim.AdamW(_param_groups(model, phase), weight_decay=spec.weight_decay)
        # A few-shot set is a batch or two per epoch: each epoch passes over it `passes` times so that the
        # phase gets min_steps updates; validation and patience still count the plan's epochs.
        passes = max(1, math.ceil(spec.min_steps / (phase.epochs * len(loader))))
        total = max(1, phase.epochs * passes * len(loader))
        scheduler = get_cosine_schedule_with_warmup(optimizer, int(phase.warmup * total), total)
        net, optimizer, loader = accelerator.prepare(net, optimizer, loader)
        if number == 0:
            _record(history, best, model, phase, 0, None, validate, time.perf_counter())
        stale = 0
        for _ in range(phase.epochs):
            t0 = time.perf_counter()
            model.train()
            losses = []
            with progress_bar(f"{phase.name} epoch {len(history.records)}", passes * len(loader),
                              show_progress) as advance:
                for _ in range(passes):
                    for batch, targets in loader:
                        with autocast(precision):
                            logits = net(batch)
                        loss = data.task.loss(logits, targets)
                        value = check_loss(loss.item(), f"{phase.name} phase, epoch {len(history.records)}", phase.lr)
                        accelerator.backward(loss)
                        optimizer.step()
                        scheduler.step()
                        optimizer.zero_grad(set_to_none=True)
                        losses.append(value)
                        advance(1)
            improved = _record(history, best, model, phase, len(history.records), float(np.mean(losses)),
                               validate, t0)
            yield number, history
            stale = 0 if improved else stale + 1
            if stale >= spec.patience:
                break
        model.load_state_dict(best["state"])  # the next phase starts from this phase's best weights
    with torch.no_grad():  # what the task decides on validation data (a threshold) travels with the model
        model.task = data.task.tuned(val_logits(), y_val)
    model.backbone.set_trainable(None)
    model.eval()
    history.seconds = time.perf_counter() - started
    yield len(plan.phases), history


def _phase_inputs(model: TransferModel, data: TaskData, spec: TrainSpec, precision: str, number: int,
                  show_progress: bool):
    """(module to train, training batches, validation logits()) for a phase: cached features when the backbone is
    frozen."""
    y_train = data.targets(data.train)
    shuffle = torch.Generator().manual_seed(spec.seed + number)
    if model.backbone.trainable_from is None:
        fingerprint = model.backbone.fingerprint()
        features = {name: embed(model.backbone, ex.inputs, EVAL_BATCH, precision, show_progress, fingerprint)
                    for name, ex in (("train", data.train), ("val", data.val))}
        loader = DataLoader(TensorDataset(features["train"], torch.from_numpy(y_train)), spec.batch_size,
                            shuffle=True, generator=shuffle)
        return model.feature_head(), loader, lambda: model.head(features["val"]).float()
    dataset = _RawInputs(data.train, y_train, model.backbone)
    loader = DataLoader(dataset, spec.batch_size, shuffle=True, collate_fn=dataset.collate, generator=shuffle)
    return model, loader, lambda: _raw_logits(model, data.val.inputs, precision)


def _param_groups(model: TransferModel, phase: Phase) -> list[dict]:
    groups = [{"params": list(model.head.parameters()), "lr": phase.lr}]
    for group in model.backbone.trainable_groups():
        params = [p for p in group.parameters() if p.requires_grad]
        if params:
            groups.append({"params": params, "lr": phase.lr * phase.backbone_lr_mult})
    return groups


@torch.no_grad()
def _raw_logits(model: TransferModel, inputs: list, precision: str) -> torch.Tensor:
    model.eval()
    chunks = []
    for start in range(0, len(inputs), EVAL_BATCH):
        with autocast(precision):
            chunks.append(model(model.backbone.preprocess(inputs[start:start + EVAL_BATCH])).float())
    return torch.cat(chunks)


def _record(history, best, model, phase: Phase, epoch, train_loss, validate, t0) -> bool:
    """Validate, append an epoch record, and keep the weights if they are the best so far."""
    with torch.no_grad():
        score = validate()
    accuracy, loss, correct = score.value, score.loss, score.correct
    if train_loss is not None:  # weights that overflowed in the epoch's last step show here first
        check_loss(loss, f"{phase.name} phase, epoch {epoch} (validation)", phase.lr)
    history.records.append(EpochRecord(phase.name, epoch, accuracy, loss, train_loss, time.perf_counter() - t0))
    # Only trained weights compete: epoch 0 (before training) is recorded, never restored.
    better = train_loss is not None and (
        accuracy > best["accuracy"] or (accuracy == best["accuracy"] and loss < best["loss"]))
    if better:
        best.update(accuracy=accuracy, loss=loss, state={k: v.detach().clone() for k, v in model.state_dict().items()})
        history.best_epoch, history.best_val_accuracy, history.best_val_correct = epoch, accuracy, correct
    return better
