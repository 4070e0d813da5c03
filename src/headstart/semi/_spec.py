"""The options self-training adds to fit's: typed, documented once (CLI help, README, config.yaml), checked at once."""

from __future__ import annotations

from typing import Optional

from pydantic import Field

from ..config import _Spec

__all__ = ["SelfTrainSpec"]


class SelfTrainSpec(_Spec):
    unlabeled: str = Field(description="Unlabelled data of TRAIN's kind: an image folder, a .csv/.jsonl with a 'text' "
                                       "column, or builtin:NAME. Labels in it (a 'label' column, class subfolders) "
                                       "only measure the pseudo-labels' accuracy; they never reach training.")
    rounds: int = Field(3, ge=1, description="Rounds of teacher -> pseudo-labels -> student; stops earlier when "
                                             "validation accuracy stops improving.")
    threshold: float = Field(0.9, gt=0, lt=1, description="Keep a pseudo-label when the teacher's probability "
                                                          "for it is at least this.")
    per_class_cap: Optional[int] = Field(None, ge=1, description="Keep at most the N most confident pseudo-labels "
                                                                 "per class, so that one class cannot flood the set.")
    noise: bool = Field(False, description="Noisy Student: the student (never the teacher) trains with dropout on "
                                           "the features and, for images, augmented copies of its training images.")

    @classmethod
    def build(cls, raw: dict) -> "SelfTrainSpec":
        return cls._validate_options(raw, "self-training options")
