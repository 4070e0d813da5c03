"""Plans are data: which layer groups train, at which learning rate, for how long. The engine runs them."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Literal, Optional

WISE_MIXES = tuple(i / 10 for i in range(11))  # a wise phase's mixes of its end with its start (events.WiSE)


@dataclass(frozen=True)
class Phase:
    """One stretch of training. `train_from`: the first backbone group that trains (None: backbone frozen)."""

    name: str
    epochs: int
    lr: float                      # the new head's learning rate
    train_from: Optional[int] = None
    backbone_lr_mult: float = 0.1  # pretrained groups train at lr * this
    warmup: float = 0.1            # share of the phase's steps spent warming up, then cosine decay
    # Pretrained BatchNorm statistics stay fixed while fine-tuning: small batches of a new task would
    # replace them with noisy estimates. Training from scratch has no statistics worth keeping.
    update_bn_stats: bool = False
    # "lbfgs": the head alone, fitted to convergence on cached features with its L2 strength chosen by
    # cross-validation (train/convex.py); epochs and lr do not apply. "classical": the task's scikit-learn
    # estimator fitted on classical features (baselines.py), its coefficients copied into the head. "adamw":
    # the epoch loop.
    solver: Literal["adamw", "lbfgs", "classical"] = "adamw"
    folds: int = 5                 # lbfgs: cross-validation folds over the training + validation examples
    # Regularised fine-tuning (each 0 / "all" / "at-once" when off):
    lr_decay: float = 1.0          # each group learns at lr_decay x the rate of the group above it (ULMFiT, LLRD)
    l2sp: float = 0.0              # pull of the pretrained weights back to their start (L2-SP), see events.L2SP
    unfreeze: Literal["at-once", "gradual"] = "at-once"  # gradual: epoch e trains the head and the top e groups
    params: Literal["all", "bias"] = "all"               # bias: only the trainable groups' biases (BitFit)
    lora_rank: int = 0             # > 0: the trainable groups learn low-rank updates (LoRA), merged at the end
    # "task": the task's own loss on the head's outputs. "pairs": the backbone alone, on pairs of examples (cosine
    # similarity 1 for the same class, 0 otherwise: SetFit), the head being the features' nearest-centroid
    # classifier (train/pairs.py)
    objective: Literal["task", "pairs"] = "task"
    # after the phase, its weights mixed with those it started from, the mix chosen on validation (events.WiSE)
    wise: bool = False

    def __post_init__(self):
        if self.solver != "adamw" and self.train_from is not None:
            raise ValueError(f"a {self.solver} phase fits the head on frozen features: train_from must be None")
        if self.objective == "pairs" and self.solver != "adamw":
            raise ValueError("a phase on pairs of examples trains the backbone: its solver must be adamw")
        if self.lora_rank and (self.params != "all" or self.unfreeze != "at-once"):
            raise ValueError("a LoRA phase adapts its groups' projections: params and unfreeze must stay as they are")

    def describe(self, n_groups: int) -> str:
        if self.solver == "classical":
            return (f"{self.name}: no backbone; TF-IDF of words and word pairs (texts) or standardised 16x16 grey "
                    "pixels (images), fitted on the training examples, then the task's scikit-learn estimator "
                    "(logistic regression with C chosen by 3-fold cross-validation, ridge regression, one logistic "
                    "regression per tag) copied into the head, scored on validation, then refit with the validation "
                    "examples folded back (--backbone, --epochs and --lr do not apply)")
        if self.solver == "lbfgs":
            return (f"{self.name}: head only, fitted to convergence by L-BFGS, its L2 strength chosen by "
                    f"{self.folds}-fold cross-validation on the training + validation examples, then refit on all "
                    "of them (backbone frozen, features cached; --epochs and --lr do not apply)")
        if self.train_from is None or self.train_from >= n_groups:
            what = "head only (backbone frozen, features cached)"
        elif self.train_from == 0:
            what = f"head + all {n_groups} backbone groups at lr x {self.backbone_lr_mult:g}"
        else:
            what = (f"head + backbone groups {self.train_from}..{n_groups - 1} at lr x {self.backbone_lr_mult:g} "
                    f"(groups 0..{self.train_from - 1} frozen)")
        return f"{self.name}: {self.epochs} epochs, lr {self.lr:g}, {what}{self._extras()}"

    def _extras(self) -> str:
        """What a fine-tuning phase does beyond its groups and rates (regularisers, its objective), in words."""
        said = [f"each group below the top at {self.lr_decay:g} x the rate of the one above it"
                ] if self.lr_decay != 1 else []
        if self.l2sp:
            said.append(f"pulled back to the pretrained weights with strength {self.l2sp:g} (L2-SP)")
        if self.unfreeze == "gradual":
            said.append("unfrozen gradually: epoch 1 trains the head alone, each later epoch one more group from the top")
        if self.params == "bias":
            said.append("only the biases of the backbone train (BitFit)")
        if self.objective == "pairs":
            said.append("trained on pairs of examples, cosine similarity 1 for the same class and 0 for others "
                        "(SetFit); the head is the nearest-centroid classifier of the features")
        if self.wise:
            said.append("then its weights mixed with those it started from, a x end + (1 - a) x start, a in "
                        f"{', '.join(f'{a:g}' for a in WISE_MIXES)} chosen on validation (WiSE-FT)")
        if self.lora_rank:
            said.append(f"of the backbone only rank-{self.lora_rank} LoRA updates of its attention projections train, "
                        "merged into the weights at the end")
        return "".join(f"; {s}" for s in said)


@dataclass(frozen=True)
class Plan:
    strategy: str
    phases: tuple[Phase, ...]
    # "classical": no backbone is loaded; classical features are fitted on the training inputs instead
    init: Literal["pretrained", "random", "classical"] = "pretrained"

    def describe(self, n_groups: int) -> str:
        start = "classical features" if self.init == "classical" else f"{self.init} weights"
        lines = [f"strategy {self.strategy} ({start})"]
        return "\n".join(lines + ["  " + p.describe(n_groups) for p in self.phases])

    def to_dict(self) -> dict:
        return {"strategy": self.strategy, "init": self.init, "phases": [asdict(p) for p in self.phases]}

    @classmethod
    def from_dict(cls, data: dict) -> "Plan":
        return cls(data["strategy"], tuple(Phase(**p) for p in data["phases"]), data.get("init", "pretrained"))
