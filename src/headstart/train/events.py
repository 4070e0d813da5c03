"""The engine's events, and the callbacks that hang off them: what happens around the training loop.

The loop fires five events, always in this order of callbacks and events:

    on_phase_start   a phase's trainable groups, optimiser and validation path are set
    on_step_end      after every optimiser step (the gradients still there), before the schedule moves on
    on_epoch_end     after every epoch: state.train_loss holds its mean training loss
    on_phase_end     after a phase's last epoch (or its early stop)
    on_fit_end       after the last phase, before the final history is yielded

The built-in callbacks, in order: Validation (scores the validation set, records the history), BestWeights
(keeps the best epoch's weights, restores them at the end of each phase), EarlyStopping (stops a phase after
`patience` epochs without a better one), TaskTuning (what the task decides on validation data, e.g. a multi-label
threshold), L2SP (the pull back to the pretrained weights of a phase that asks for it), WiSE (a phase's end mixed
with its start, the mix chosen on validation, in a phase that asks for it). Extra callbacks
(regularisers) come after them and see the same state. After on_epoch_end the engine
writes its checkpoint (when asked to), with every callback's state_dict(), and a resumed run loads them back.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import torch

from ..strategies._plan import WISE_MIXES
from .history import EpochRecord, History

__all__ = ["EVENTS", "Callback", "State", "Validation", "BestWeights", "EarlyStopping", "TaskTuning", "L2SP", "WiSE",
           "default_callbacks"]

EVENTS = ("on_phase_start", "on_step_end", "on_epoch_end", "on_phase_end", "on_fit_end")


@dataclass
class State:
    """What the loop shares with its callbacks. Callbacks may read everything and set `stop`."""

    model: Any
    data: Any
    history: History
    targets_val: Any
    phase: Any = None
    number: int = 0                                   # the phase's index in the plan
    val_logits: Callable[[], torch.Tensor] | None = None
    optimizer: Any = None                             # the phase's: group 0 is the head, the rest the backbone
    epoch_started: float = 0.0
    train_loss: float | None = None
    score: Any = None                                 # the Task's Score of the epoch just validated
    improved: bool = False                            # whether that epoch is the best so far
    stop: bool = False                                # set by a callback: end this phase after this epoch
    extra: dict = field(default_factory=dict)          # room for callbacks' own bookkeeping
    trained: Any = None                               # what the plan can change: the head alone, or the model


class Callback:
    """Override the events you need; each receives the loop's State."""

    def on_phase_start(self, state: State) -> None: ...

    def on_step_end(self, state: State) -> None: ...

    def on_epoch_end(self, state: State) -> None: ...

    def on_phase_end(self, state: State) -> None: ...

    def on_fit_end(self, state: State) -> None: ...

    def state_dict(self) -> dict:
        """What the callback must remember across a checkpoint (tensors, numbers, lists, dicts); nothing by default."""
        return {}

    def load_state_dict(self, state: dict) -> None: ...


class Validation(Callback):
    """Score the validation set after every epoch (and once before training) and append the history record.
    A validation loss that is not finite stops the run: the weights have overflowed."""

    def __init__(self, check_loss: Callable[[float, str, float], float]):
        self.check_loss = check_loss

    def on_phase_start(self, state: State) -> None:
        if state.number == 0:  # epoch 0: the new head on the starting backbone, the floor to improve on
            state.train_loss, state.epoch_started = None, time.perf_counter()
            self._record(state, 0)

    def on_epoch_end(self, state: State) -> None:
        self._record(state, len(state.history.records))

    def _record(self, state: State, epoch: int) -> None:
        with torch.no_grad():
            state.score = state.data.task.validate(state.val_logits(), state.targets_val)
        if state.train_loss is not None:
            self.check_loss(state.score.loss, f"{state.phase.name} phase, epoch {epoch} (validation)", state.phase.lr)
        rates = [group["lr"] for group in state.optimizer.param_groups] if state.optimizer is not None else [None]
        state.history.records.append(EpochRecord(state.phase.name, epoch, state.score.value, state.score.loss,
                                                 state.train_loss, time.perf_counter() - state.epoch_started,
                                                 rates[0], rates[1] if len(rates) > 1 else None))


class BestWeights(Callback):
    """Keep the weights of the best epoch so far (higher score, then lower loss); every phase ends on them, so the
    next phase starts from them. Epoch 0 (before training) is recorded, never kept."""

    def __init__(self):
        self.score, self.loss, self.weights = -math.inf, math.inf, None

    def on_phase_start(self, state: State) -> None:
        state.improved = False

    def on_epoch_end(self, state: State) -> None:
        value, loss = state.score.value, state.score.loss
        state.improved = value > self.score or (value == self.score and loss < self.loss)
        if state.improved:
            self.score, self.loss = value, loss
            self.weights = snapshot(state.trained)
            history = state.history
            history.best_epoch, history.best_val_accuracy = len(history.records) - 1, value
            history.best_val_correct = state.score.correct

    def on_phase_end(self, state: State) -> None:
        if self.weights is not None:
            state.trained.load_state_dict(self.weights)

    def state_dict(self) -> dict:
        return {"score": self.score, "loss": self.loss, "weights": self.weights}

    def load_state_dict(self, state: dict) -> None:
        self.score, self.loss, self.weights = state["score"], state["loss"], state["weights"]


class EarlyStopping(Callback):
    """End a phase after `patience` epochs in a row without a better validation score."""

    def __init__(self, patience: int):
        self.patience, self.stale = patience, 0

    def on_phase_start(self, state: State) -> None:
        self.stale, state.stop = 0, False

    def on_epoch_end(self, state: State) -> None:
        self.stale = 0 if state.improved else self.stale + 1
        state.stop = state.stop or self.stale >= self.patience

    def state_dict(self) -> dict:
        return {"stale": self.stale}

    def load_state_dict(self, state: dict) -> None:
        self.stale = state["stale"]


class TaskTuning(Callback):
    """What the task decides on validation data once training ends (a multi-label threshold) travels with the
    model: the model's task becomes the tuned one."""

    def on_fit_end(self, state: State) -> None:
        with torch.no_grad():
            state.model.task = state.data.task.tuned(state.val_logits(), state.targets_val)


class L2SP(Callback):
    """L2-SP (Li et al., 2018): fine-tuned weights are pulled back towards the pretrained ones instead of towards
    zero. Decoupled from the loss as AdamW's weight decay is, after every step each backbone weight moves by
    lr x strength x (its start - itself), at its own group's learning rate. Adam's steps are about lr in size, so
    a weight settles within roughly 1 / strength of where it started. Acts in phases whose `l2sp` is above 0."""

    def __init__(self):
        self.start: dict[str, torch.Tensor] = {}
        self.anchors: dict | None = None  # parameter -> its start, paired once per phase (not on every step)

    def on_phase_start(self, state: State) -> None:
        self.start = {name: p.detach().clone() for name, p in state.model.backbone.named_parameters()
                      if p.requires_grad} if state.phase.l2sp else {}
        self.anchors = None

    def on_step_end(self, state: State) -> None:
        if not self.start:
            return
        if self.anchors is None:
            self.anchors = {p: self.start[name] for name, p in state.model.backbone.named_parameters()
                            if name in self.start}
        with torch.no_grad():
            for group in state.optimizer.param_groups[1:]:  # group 0 is the new head: nothing to go back to
                pull = min(1.0, group["lr"] * state.phase.l2sp)
                for p in group["params"]:
                    p.lerp_(self.anchors[p], pull)

    def state_dict(self) -> dict:
        return {"start": self.start}

    def load_state_dict(self, state: dict) -> None:
        self.start, self.anchors = state["start"], None


class WiSE(Callback):
    """WiSE-FT (Wortsman et al., 2022): once a phase that asks for it has ended on its best epoch, its weights are
    mixed with those it started from, (1 - a) x start + a x end, for a in MIXES, and the mix that scores best on
    validation (ties: the lower validation loss) is kept. After a linear probe the start is a whole model (the
    pretrained backbone and the probe's head), so every mix is one too; the history's best score becomes the
    kept mix's, which is what auto's race compares."""

    MIXES = WISE_MIXES

    def __init__(self):
        self.start: dict[str, torch.Tensor] = {}

    def on_phase_start(self, state: State) -> None:
        self.start = snapshot(state.model) if state.phase.wise else {}

    def on_phase_end(self, state: State) -> None:
        if not self.start:
            return
        end = snapshot(state.model)  # a copy: loading each mix overwrites the weights in place
        mixed = lambda a: {k: torch.lerp(self.start[k], v, a) if v.is_floating_point() else v  # noqa: E731
                           for k, v in end.items()}  # (integer buffers, e.g. position ids, are the same at both ends)
        scores = {}
        for mix in self.MIXES:
            state.model.load_state_dict(mixed(mix))
            with torch.no_grad():
                scores[mix] = state.data.task.validate(state.val_logits(), state.targets_val)
        mix = max(self.MIXES, key=lambda a: (scores[a].value, -scores[a].loss))
        state.model.load_state_dict(mixed(mix))
        history = state.history
        history.best_val_accuracy, history.best_val_correct = scores[mix].value, scores[mix].correct
        state.data.notes.append(
            f"{state.phase.name}: weights mixed with the phase's start (WiSE-FT), {mix:g} x end + {1 - mix:g} x start, "
            f"chosen on validation ({', '.join(f'{a:g}: {scores[a].value:.3f}' for a in self.MIXES)})")
        self.start = {}

    def state_dict(self) -> dict:
        return {"start": self.start}

    def load_state_dict(self, state: dict) -> None:
        self.start = state["start"]


def snapshot(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    """A copy of the module's state (weights and buffers), untouched by the training that goes on."""
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def default_callbacks(patience: int, check_loss) -> list[Callback]:
    return [Validation(check_loss), BestWeights(), EarlyStopping(patience), TaskTuning(), L2SP(), WiSE()]
