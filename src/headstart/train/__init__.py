"""Training: the engine that runs plans, the feature cache, progress and history."""

from .cache import embed
from .engine import check_loss, check_plan, run, steps
from .events import EVENTS, Callback, State
from .history import EpochRecord, History
from .recipe import new_model, plan_steps, train_plan

__all__ = ["run", "steps", "check_loss", "check_plan", "Callback", "State", "EVENTS", "embed", "History", "EpochRecord",
           "new_model", "train_plan", "plan_steps"]
