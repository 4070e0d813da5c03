"""PretrainSpec: every option of `headstart pretrain`, typed and documented once; the CLI's help texts.

    spec = PretrainSpec.build({"data": "builtin:mnist", "method": "contrastive",
                               "backbone": {"name": "timm:resnet10t:random", "image_size": 32}})
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal, Optional

from pydantic import Field

from ..config import BackboneSpec, TableColumns, read_config_section, seed_field
from ._method import PretrainOptions

__all__ = ["PretrainSpec", "RANDOM_INIT_STRATEGY"]

# A backbone that starts from random weights has no BatchNorm statistics worth freezing: train it like scratch.
RANDOM_INIT_STRATEGY = "scratch"


class PretrainSpec(TableColumns):
    data: str = Field(description="Pretraining data: an image folder, a .csv/.jsonl ('label' column/class subfolders "
                                  "for supervised; only inputs are read otherwise), a .txt (one text per line; mlm), "
                                  "or builtin:NAME.")
    method: str = Field(description="How to pretrain: supervised (labelled source task), mlm (masked-language "
                                    "modelling on unlabelled text) or contrastive (SimCLR on unlabelled images).")
    backbone: BackboneSpec
    epochs: Optional[int] = Field(None, ge=1, description="Passes over the data; default: the method's own.")
    lr: Optional[float] = Field(None, gt=0, allow_inf_nan=False, description="Learning rate (AdamW, warm-up + cosine); default: the method's own.")
    batch_size: int = Field(32, ge=2, description="Examples per step (contrastive: images, each seen in two views).")
    mask_prob: float = Field(0.15, gt=0, lt=1, description="mlm: share of tokens masked (80% [MASK], 10% random, 10% kept).")
    temperature: float = Field(0.1, gt=0, le=10, description="contrastive: NT-Xent temperature; lower is sharper.")
    strategy: Optional[str] = Field(None, description="supervised: how the backbone trains on the source task "
                                                      "(full, lp-ft, scratch...); default full, scratch for a :random backbone.")
    train_size: Optional[int] = Field(None, gt=1, description="Use a random subset of this many examples "
                                                              "(stratified for supervised).")
    precision: Optional[Literal["fp32", "bf16"]] = Field(None, description="Arithmetic: bf16 (default where the CPU "
                                                                           "has native bf16) or fp32.")
    seed: int = seed_field("Seed for subsets, splits, initialisation, augmentation and shuffling")
    headstart_version: Optional[str] = None

    @classmethod
    def build(cls, raw: dict) -> "PretrainSpec":
        return cls.validated(raw, "pretrain options")

    @classmethod
    def from_yaml(cls, path: str | Path) -> "PretrainSpec":
        """The spec a backbone folder's config.yaml recorded: rerun it with `pretrain --config`."""
        return cls.build(read_config_section(path, "pretrain", "headstart pretrain"))

    def options(self) -> PretrainOptions:
        """What the method sees (precision and strategy already resolved by the recipe)."""
        return PretrainOptions(epochs=self.epochs, lr=self.lr, batch_size=self.batch_size, seed=self.seed,
                               precision=self.precision or "fp32", mask_prob=self.mask_prob,
                               temperature=self.temperature, strategy=self.strategy or "full")

    def to_dict(self) -> dict:
        return self.model_dump(mode="json")
