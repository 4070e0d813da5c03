"""LoRA through PEFT: low-rank updates of the backbone's attention projections while a phase trains, merged into
the plain weights when it ends, so the saved model is the architecture it started as (predict needs no PEFT)."""

from __future__ import annotations

from peft import LoraConfig, LoraModel

__all__ = ["inject", "merge"]


def inject(backbone, rank: int) -> LoraModel:
    """Wrap the backbone's attention projections in LoRA layers (alpha = 2 x rank, no dropout); only their
    low-rank factors train. Returns the tuner that `merge` takes. strategies.check_fits has made sure there are
    projections to adapt."""
    config = LoraConfig(r=rank, lora_alpha=2 * rank, lora_dropout=0.0,
                        target_modules=backbone.attention_projections(), bias="none")
    return LoraModel(backbone, config, adapter_name="default")


def merge(tuner: LoraModel) -> None:
    """Fold the trained low-rank updates into the projections' weights and put the plain layers back."""
    tuner.merge_and_unload()
