"""The engine: runs a Plan's phases on Accelerate, with no knowledge of which strategy made the plan.

Per phase: set which groups train, pick the data path (cached features when the backbone is frozen, cached
activations after the frozen groups when only the first K are (prefix.py), pairs of examples for a pairs phase
(pairs.py), raw inputs otherwise), AdamW with one learning rate per group, warm-up + cosine. Validation, the best
weights, early stopping and the task's tuning hang off the loop's events (events.py), as callers' own
callbacks do.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator, Sequence

import numpy as np
import torch
from accelerate import Accelerator, PartialState
from accelerate.utils import DataLoaderConfiguration, DistributedDataParallelKwargs, set_seed
from torch import nn
from torch.utils.data import DataLoader, TensorDataset
from transformers import get_cosine_schedule_with_warmup

from ..baselines import fit_classical_head
from ..batching import training_loader
from ..checkpoints import Checkpoints, capture_random, restore_random
from ..config import TrainSpec
from ..data import Examples, TaskData
from ..data.augment import augment_images
from ..distributed import check_batch_size, on_cpu
from ..errors import HeadstartError
from ..model import TransferModel, autocast
from ..strategies import Phase, Plan, check_fits
from ..tasks import rows_of
from .cache import embed
from . import lora
from .convex import fit_head
from .events import Callback, State, default_callbacks
from .history import History
from .pairs import check_pairs, pair_inputs
from .prefix import prefix_inputs
from .progress import console as engine_console, progress_bar

__all__ = ["run", "steps", "check_loss", "check_plan"]

EVAL_BATCH = 64


def check_loss(value: float, where: str, lr: float) -> float:
    """The loss, or one clear line when it is not a finite number: nothing trained on from there is worth saving."""
    if not math.isfinite(value):
        raise HeadstartError(f"{where}: the loss is {value} (not a finite number), so training has diverged and "
                             f"nothing is saved; the learning rate ({lr:g}) is likely too high: try a smaller --lr")
    return value


class _RawInputs(torch.utils.data.Dataset):
    """Indices into raw inputs; batches are preprocessed by the backbone in the collate step. An input may own
    several rows of targets (one per word), in order: `starts` says where each input's rows begin."""

    def __init__(self, examples: Examples, targets: np.ndarray, backbone, augment: str = "none",
                 generator: torch.Generator | None = None):
        self.inputs, self.targets, self.backbone = examples.inputs, targets, backbone
        self.augment, self.generator = augment, generator  # images augmented anew in every batch (--augment)
        self.starts = np.concatenate([[0], np.cumsum([rows_of(x) for x in self.inputs])])

    def __len__(self):
        return len(self.inputs)

    def __getitem__(self, i):
        return i

    def collate(self, index: list[int]):
        rows = np.concatenate([np.arange(self.starts[i], self.starts[i + 1]) for i in index])
        inputs = [self.inputs[i] for i in index]
        if self.augment != "none":
            inputs = augment_images(inputs, self.augment, self.generator)
        return self.backbone.preprocess(inputs), torch.from_numpy(self.targets[rows])


def run(model: TransferModel, data: TaskData, plan: Plan, spec: TrainSpec, precision: str,
        show_progress: bool = True, callbacks: Sequence[Callback] = (),
        checkpoints: Checkpoints | None = None) -> History:
    """Train `model` in place by the plan; returns the per-epoch history. The best weights are kept."""
    history = None
    for _, history in steps(model, data, plan, spec, precision, show_progress, callbacks, checkpoints):
        pass
    return history


def check_plan(plan: Plan, backbone, data: TaskData, spec: TrainSpec) -> None:
    """Whether the plan can train this backbone on this data, in one line if not: `steps` asks first; fit asks
    before it prints the plan, compare for every plan before its first fold trains."""
    if spec.augment != "none" and data.modality != "image":
        raise HeadstartError(f"--augment {spec.augment} augments images, and the training data holds "
                             f"{data.modality}s; drop --augment")
    check_fits(plan, backbone)  # the one check; --dry-run and pretrain call it early
    if any(phase.objective == "pairs" for phase in plan.phases):
        check_pairs(data)


def steps(model: TransferModel, data: TaskData, plan: Plan, spec: TrainSpec, precision: str,
          show_progress: bool = True, callbacks: Sequence[Callback] = (),
          checkpoints: Checkpoints | None = None) -> Iterator[tuple[int, History]]:
    """`run`, one epoch at a time: yields (phase number, history so far) after every epoch, and the final
    history once the best weights are restored. A caller may stop early (auto races candidates this way).
    `callbacks` hang off the loop's events after the built-in ones (see events.py). With `checkpoints`, every
    epoch ends in a checkpoint there, and a run that finds one continues from it: the same steps, the same
    weights (in fp32, bit for bit) as if it had never stopped."""
    set_seed(spec.seed)
    check_plan(plan, model.backbone, data, spec)
    if plan.init == "random":
        model.backbone.randomize()
    saved = checkpoints.latest() if checkpoints is not None else None
    accelerator = _accelerator(spec.batch_size, gradual=any(p.unfreeze == "gradual" for p in plan.phases))
    started = time.perf_counter() - (saved["seconds"] if saved else 0.0)
    state = State(model, data, History(), data.targets(data.val), trained=_trained_part(model, plan))
    hooks = [*default_callbacks(spec.patience, check_loss), *callbacks]
    fire = lambda event: [getattr(hook, event)(state) for hook in hooks]  # noqa: E731
    for number, phase in enumerate(plan.phases):
        if saved is not None and number < saved["phase"]:
            continue  # done before the checkpoint
        _set_trainable(model, phase)
        tuner = lora.inject(model.backbone, phase.lora_rank) if phase.lora_rank else None
        augmenting = spec.augment != "none" and phase.solver == "adamw"  # a one-fit phase reads plain features
        if model.backbone.trainable_from is None and phase.solver != "classical" and not augmenting:
            state.history.cached_phases.append(phase.name)  # (classical features are not cached)
        if phase.solver != "adamw":  # no epochs: one fit to convergence (no checkpoint: seconds)
            fit = _convex_phase if phase.solver == "lbfgs" else _classical_phase
            fit(state, fire, phase, number, spec, precision, show_progress)
            yield number, state.history
            fire("on_phase_end")
            continue
        shuffle = torch.Generator().manual_seed(spec.seed + number)  # also draws the augmentations, in batch order
        net, loader, state.val_logits, loss_of = _phase_inputs(model, data, spec, precision, phase, shuffle,
                                                               show_progress)
        optimizer = torch.optim.AdamW(_param_groups(model, phase), weight_decay=spec.weight_decay)
        # A few-shot set is a batch or two per epoch: each epoch passes over it `passes` times so that the
        # phase gets min_steps updates; validation and patience still count the plan's epochs.
        passes = max(1, math.ceil(spec.min_steps / (phase.epochs * len(loader))))
        total = max(1, phase.epochs * passes * len(loader))
        scheduler = get_cosine_schedule_with_warmup(optimizer, int(phase.warmup * total), total)
        net, optimizer, loader = accelerator.prepare(net, optimizer, loader)
        state.phase, state.number, state.optimizer = phase, number, optimizer
        first = 0
        if saved is not None and number == saved["phase"]:  # where the checkpoint left off, in this phase
            first = _restore(saved, state, hooks, optimizer, scheduler, shuffle)
            saved = None
        else:
            fire("on_phase_start")
        for epoch in range(first, phase.epochs):
            if state.stop:
                break  # stopped early just before the checkpoint
            state.epoch_started, losses = time.perf_counter(), []
            if phase.unfreeze == "gradual":
                _set_trainable(model, phase, epoch)
            model.train()
            where = f"{phase.name} phase, epoch {len(state.history.records)}"
            with progress_bar(f"{phase.name} epoch {len(state.history.records)}", passes * len(loader),
                              show_progress) as advance:
                for _ in range(passes):
                    for batch, targets in loader:
                        with autocast(precision):
                            logits = net(batch)
                        loss = loss_of(logits, targets)
                        value = check_loss(loss.item(), where, phase.lr)
                        accelerator.backward(loss)
                        optimizer.step()
                        fire("on_step_end")
                        scheduler.step()
                        optimizer.zero_grad(set_to_none=True)
                        losses.append(value)
                        advance(1)
            state.train_loss = float(np.mean(losses))
            fire("on_epoch_end")
            if checkpoints is not None:
                checkpoints.save({
                    "phase": number, "epochs_done": epoch + 1, "stop": state.stop, "seconds": time.perf_counter() - started,
                    "model": state.trained.state_dict(), "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                    "shuffle": shuffle.get_state(), "random": capture_random(), "history": state.history.state_dict(),
                    "callbacks": [hook.state_dict() for hook in hooks]})
            yield number, state.history
            if state.stop:
                break
        fire("on_phase_end")
        if tuner is not None:  # on the best epoch's weights: the saved model is the plain architecture again
            lora.merge(tuner)
    fire("on_fit_end")
    model.backbone.set_trainable(None)
    model.eval()
    state.history.seconds = time.perf_counter() - started
    yield len(plan.phases), state.history


def _trained_part(model: TransferModel, plan: Plan) -> nn.Module:
    """What training can change: the head alone when no phase of the plan touches the backbone (frozen, batch-norm
    statistics kept, no LoRA, no classical features fitted), else the whole model. The best epoch's weights and the
    checkpoints keep only this part; the rest is the backbone as the caller built it, which a resumed run builds the
    same way again. A linear probe's checkpoint is then its head, not MiniLM's 90 MB again (0.8 s of a 10 s run)."""
    untouched = all(phase.train_from is None and not phase.update_bn_stats and not phase.lora_rank
                    and phase.solver != "classical" for phase in plan.phases)
    return model.head if untouched else model


def _accelerator(batch_size: int, gradual: bool = False) -> Accelerator:
    """The loop's Accelerator. With several processes each takes its share of every batch (split_batches), so
    --batch-size is the global batch and a step averages the same examples' gradients as one process would.
    Gradual unfreezing leaves some trained parameters without gradients for a while, which DDP must be told."""
    handlers = [DistributedDataParallelKwargs(find_unused_parameters=True)] if gradual else []
    accelerator = Accelerator(cpu=on_cpu(), dataloader_config=DataLoaderConfiguration(split_batches=True),
                              kwargs_handlers=handlers)
    check_batch_size(batch_size, accelerator.num_processes)  # fit checked it before any work; any other caller here
    return accelerator


def _restore(saved: dict, state: State, hooks: list[Callback], optimizer, scheduler, shuffle) -> int:
    """Put a checkpoint's state back into the loop (the phase it was in is set up); the epochs it had done."""
    try:
        state.trained.load_state_dict(saved["model"])
    except RuntimeError:  # written by a headstart that kept another part of the model
        raise HeadstartError("the checkpoint does not fit this run's model (another headstart version wrote it); "
                             "start afresh with --overwrite") from None
    optimizer.load_state_dict(saved["optimizer"])
    scheduler.load_state_dict(saved["scheduler"])
    shuffle.set_state(saved["shuffle"])
    state.history = History.from_state(saved["history"])
    for hook, hook_state in zip(hooks, saved["callbacks"]):
        hook.load_state_dict(hook_state)
    state.stop = saved["stop"]
    restore_random(saved["random"])
    return saved["epochs_done"]


def _convex_phase(state: State, fire, phase: Phase, number: int, spec: TrainSpec, precision: str,
                  show_progress: bool) -> None:
    """The head fitted to convergence on cached features (convex.py). Validation sees each validation example's
    logits from a fold that left it out, so its score, auto's comparison and a task's tuning stay honest."""
    model, data = state.model, state.data
    features = _cached_features(model, data, precision, show_progress)
    state.phase, state.number, state.optimizer = phase, number, None
    state.val_logits = lambda: model.head_logits(features["val"])
    fire("on_phase_start")
    state.epoch_started = time.perf_counter()
    fitted = fit_head(model.head, data.task, features["train"], data.targets(data.train), features["val"],
                      state.targets_val, phase.folds, spec.seed + number)
    state.train_loss, state.val_logits = fitted.loss, lambda: fitted.val_logits
    data.notes.append(f"{phase.name}: head fitted by L-BFGS with L2 strength C = {fitted.C:g}, chosen by "
                      f"{fitted.folds}-fold cross-validation on the {len(data.train)} training and {len(data.val)} "
                      f"validation examples ({data.task.score_name} {fitted.cv_score:.4f} out of fold), then refit "
                      "on all of them; its validation score is out of fold")
    fire("on_epoch_end")


def _classical_phase(state: State, fire, phase: Phase, number: int, spec: TrainSpec, precision: str,
                     show_progress: bool) -> None:
    """The task's scikit-learn estimator on classical features, copied into the head (baselines.py): validated on
    the validation split while it is held out, then refit with it folded back (with a few labels per class every
    one counts; a fit takes seconds). The score stays that of the held-out fit, so auto's race and a task's tuning
    stay honest. In fp32 whatever the run's precision: a TF-IDF logit sums thousands of small terms."""
    model, data = state.model, state.data
    state.phase, state.number, state.optimizer = phase, number, None
    state.val_logits = lambda: model.logits(data.val.inputs, EVAL_BATCH, "fp32")
    fire("on_phase_start")
    state.epoch_started = time.perf_counter()
    fit_classical_head(model, data.train, data.task, spec.seed + number)
    held_out = state.val_logits()
    everything = data.train.joined(data.val)
    note, train_logits = fit_classical_head(model, everything, data.task, spec.seed + number)
    data.notes.append(f"{note} (the {len(data.train)} training and {len(data.val)} validation examples: the same fit "
                      "on the training examples alone was scored on validation first)")
    state.val_logits = lambda: held_out
    state.train_loss = float(data.task.loss(train_logits, torch.from_numpy(data.targets(everything))))
    fire("on_epoch_end")


def _cached_features(model: TransferModel, data: TaskData, precision: str, show_progress: bool) -> dict:
    """The frozen backbone's features of the training and validation examples, through the feature cache."""
    fingerprint = model.backbone.fingerprint()
    with PartialState().main_process_first():  # the others then read what it put in the disk cache
        return {name: embed(model.backbone, ex.inputs, EVAL_BATCH, precision, show_progress, fingerprint)
                for name, ex in (("train", data.train), ("val", data.val))}


def _phase_inputs(model: TransferModel, data: TaskData, spec: TrainSpec, precision: str, phase: Phase,
                  shuffle: torch.Generator, show_progress: bool):
    """(module to train, training batches drawn with `shuffle`, validation logits(), loss(outputs, targets)) for a
    phase: pairs of examples for a pairs phase (pairs.py), cached features when the backbone is frozen, cached
    activations after the frozen groups when only some are (prefix.py), raw inputs otherwise or when the images
    are augmented (new ones every epoch). The loss is the task's, but on pairs."""
    y_train = data.targets(data.train)
    frozen = model.backbone.trainable_from
    if phase.objective == "pairs":
        return pair_inputs(model, data, spec.batch_size, precision, spec.augment, shuffle, EVAL_BATCH)
    if frozen is None and spec.augment == "none":
        features = _cached_features(model, data, precision, show_progress)
        loader = DataLoader(TensorDataset(features["train"], torch.from_numpy(y_train)), spec.batch_size,
                            shuffle=True, generator=shuffle)
        return model.feature_head(), loader, lambda: model.head_logits(features["val"]), data.task.loss
    if spec.augment != "none":
        _say(data, f"{phase.name}: training images augmented anew every epoch (--augment {spec.augment})"
             + ("; the feature cache is off, so the frozen backbone runs on every batch" if frozen is None else ""))
    elif frozen and phase.unfreeze == "at-once":
        cached = prefix_inputs(model, data, spec.batch_size, precision, shuffle, show_progress, EVAL_BATCH)
        if not isinstance(cached, str):
            data.notes.append(f"{phase.name}: the {frozen} frozen layer groups ran once over the data (frozen-prefix "
                              "cache); the groups after them trained on their cached activations")
            return (*cached, data.task.loss)
        _say(data, f"{phase.name}: the {frozen} frozen layer groups run on every batch: {cached}")
    dataset = _RawInputs(data.train, y_train, model.backbone, spec.augment, shuffle)
    loader = training_loader(dataset, data.train.inputs, spec.batch_size, shuffle, dataset.collate)
    return model, loader, lambda: model.logits(data.val.inputs, EVAL_BATCH, precision), data.task.loss


def _say(data: TaskData, note: str) -> None:
    """A note on how the phase runs, on the console and in the run's notes."""
    engine_console.print(note, highlight=False)
    data.notes.append(note)


def _set_trainable(model: TransferModel, phase: Phase, epoch: int | None = None) -> None:
    """Which backbone parameters train: the phase's groups (in epoch `epoch` of a gradual phase, the top `epoch`
    of them), and of those only the biases in a BitFit phase."""
    backbone, start = model.backbone, phase.train_from
    if epoch is not None and start is not None:
        start = max(start, len(backbone.layer_groups()) - epoch)
    backbone.set_trainable(start, phase.update_bn_stats)
    if phase.params == "bias":
        for name, parameter in backbone.named_parameters():
            parameter.requires_grad_(parameter.requires_grad and name.endswith("bias"))


def _param_groups(model: TransferModel, phase: Phase) -> list[dict]:
    """The head at the phase's rate, then each trainable backbone group at lr x backbone_lr_mult, times lr_decay
    once for every group between it and the top. Under L2-SP the pretrained weights decay towards where they
    started (events.L2SP), not towards zero."""
    groups = [{"params": list(model.head.parameters()), "lr": phase.lr}]
    n_groups = len(model.backbone.layer_groups())
    for index, group in enumerate(model.backbone.layer_groups()):
        params = [p for p in group.parameters() if p.requires_grad]
        if params:
            rate = phase.lr * phase.backbone_lr_mult * phase.lr_decay ** (n_groups - 1 - index)
            groups.append({"params": params, "lr": rate, **({"weight_decay": 0.0} if phase.l2sp else {})})
    return groups
