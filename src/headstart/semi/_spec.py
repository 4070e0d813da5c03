"""The options self-training adds to fit's: typed, documented once (CLI help, README, config.yaml), checked at once."""

from __future__ import annotations

from pathlib import Path
from typing import Literal, Optional

from pydantic import Field, model_validator

from ..config import _Spec, read_config_section

__all__ = ["SelfTrainSpec", "DEFAULT_THRESHOLD"]

DEFAULT_THRESHOLD = 0.9  # --selection threshold's probability when --threshold is not given


class SelfTrainSpec(_Spec):
    unlabeled: str = Field(description="Unlabelled data of TRAIN's kind: an image folder, a .csv/.jsonl with a 'text' "
                                       "column, or builtin:NAME. Labels in it (a 'label' column, class subfolders) "
                                       "only measure the pseudo-labels' accuracy; they never reach training.")
    rounds: int = Field(3, ge=1, description="Rounds of teacher -> pseudo-labels -> student; stops earlier when a "
                                             "student's validation accuracy drops below the best round's.")
    selection: Literal["curriculum", "threshold"] = Field(
        "curriculum", description="Which pseudo-labels a round keeps. curriculum: round r keeps the r x "
                                  "--curriculum-step share of the pool the teacher is most sure of, split between "
                                  "the classes by --class-shares. threshold: every pseudo-label whose "
                                  "probability reaches --threshold.")
    class_shares: Literal["predicted", "labelled", "smaller"] = Field(
        "smaller", description="How the curriculum splits a round's pseudo-labels between the classes. predicted: "
                                 "as the teacher's predictions on the pool split, so every class keeps the same top "
                                 "fraction of the examples predicted as it; labelled: as the labelled data splits; "
                                 "smaller (the default): per class the smaller of the two.")
    curriculum_step: float = Field(0.25, gt=0, le=1, description="The share of the unlabelled pool each curriculum "
                                                                 "round adds (0.25: 25%, 50%, 75%, 100%, ...).")
    threshold: Optional[float] = Field(None, gt=0, lt=1, description="Keep a pseudo-label only when the teacher's "
                                                                     "probability for it is at least this (default: "
                                                                     "0.9 with --selection threshold, no floor with "
                                                                     "curriculum).")
    per_class_cap: Optional[int] = Field(None, ge=1, description="Keep at most the N most confident pseudo-labels "
                                                                 "per class, so that one class cannot flood the set.")
    noise: bool = Field(False, description="Noisy Student: the student (never the teacher) trains with dropout on "
                                           "the features and, for images, augmented copies of its training images.")

    @model_validator(mode="after")
    def _resolve_threshold(self) -> "SelfTrainSpec":
        if self.selection == "threshold" and self.threshold is None:
            self.threshold = DEFAULT_THRESHOLD  # saved resolved, so config.yaml says what ran
        return self

    @classmethod
    def build(cls, raw: dict) -> "SelfTrainSpec":
        return cls.validated(raw, "self-training options")

    @classmethod
    def from_yaml(cls, path: str | Path) -> "SelfTrainSpec":
        """The self_training section of a self-train run's config.yaml (its derived notes on noise left out)."""
        raw = read_config_section(path, "self_training", "headstart self-train")
        return cls.build({k: v for k, v in raw.items() if k in cls.model_fields})
