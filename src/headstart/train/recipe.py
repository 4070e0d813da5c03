"""The one recipe that trains a plan: seed, backbone, new head (`new_model`), then the engine. compare,
self-training and supervised pretraining train through `train_plan`, auto's race through `plan_steps`, and fit
builds with `new_model` (it checks the modality and prints the plan before the engine runs), so the same seed
gives the same model whoever asks (fit and auto's race load the backbone after seeding, the others copy one
loaded once).

    model, history = train_plan(spec.backbone, data, plan, spec.train, "fp32")
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from accelerate.utils import set_seed

from ..backbones import Backbone, classical_features, load
from ..baselines import baseline_refusal
from ..checkpoints import Checkpoints
from ..config import BackboneSpec, TrainSpec
from ..data import TaskData
from ..model import TransferModel
from ..errors import HeadstartError
from ..strategies import Plan
from .engine import run, steps
from .events import Callback
from .history import History

__all__ = ["new_model", "train_plan", "plan_steps"]


def new_model(backbone: BackboneSpec | Backbone | None, data: TaskData, seed: int, plan: Plan | None = None
              ) -> TransferModel:
    """Seed, then the backbone (loaded from its spec, or one the caller loaded or copied; for a plan on classical
    features, those fitted on the training inputs instead: `backbone` may then be None), then a new head sized
    to the task: its initialisation is part of the run."""
    set_seed(seed)
    if plan is not None and plan.init == "classical":
        refusal = baseline_refusal(data.task)
        if refusal:
            raise HeadstartError(refusal)
        return TransferModel(classical_features(data.train), data.task)
    return TransferModel(load(backbone) if isinstance(backbone, BackboneSpec) else backbone, data.task)


def train_plan(backbone: BackboneSpec | Backbone | None, data: TaskData, plan: Plan, spec: TrainSpec, precision: str,
               show_progress: bool = True, feature_dropout: float = 0.0,
               callbacks: Sequence[Callback] = (), checkpoints: Checkpoints | None = None
               ) -> tuple[TransferModel, History]:
    """A new model trained by the plan (best weights kept). `feature_dropout` noises the features before the head
    while training only (self-training's noisy student); the model returned predicts without it. With
    `checkpoints`, every epoch is checkpointed there and a checkpoint found there is resumed."""
    model = new_model(backbone, data, spec.seed, plan)
    model.feature_dropout = feature_dropout
    history = run(model, data, plan, spec, precision, show_progress, callbacks, checkpoints)
    model.feature_dropout = 0.0
    return model, history


def plan_steps(backbone: BackboneSpec | Backbone, data: TaskData, plan: Plan, spec: TrainSpec, precision: str,
               show_progress: bool = True, checkpoints: Checkpoints | None = None
               ) -> tuple[TransferModel, Iterator[tuple[int, History]]]:
    """`train_plan` one epoch at a time (auto pauses and resumes candidates): the model, and the engine's steps."""
    model = new_model(backbone, data, spec.seed, plan)
    return model, steps(model, data, plan, spec, precision, show_progress, checkpoints=checkpoints)
