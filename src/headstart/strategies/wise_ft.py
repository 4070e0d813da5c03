"""wise-ft: lp-ft, then the fine-tuned weights mixed with the probed ones, the mix chosen on validation (WiSE-FT,
Wortsman et al., 2022).

The probe's model (pretrained backbone, trained head) and the fine-tuned one lie in one basin, so weights in
between are a model too; the mix keeps what the fine-tune gained on the task and what it forgot of the
pretraining, and costs eleven validation passes.
"""

from dataclasses import replace

from . import Plan, register
from .lp_ft import LpFtOptions, lp_ft


@register("wise-ft", LpFtOptions)
def wise_ft(options: LpFtOptions, argument=None) -> Plan:
    probe, fine_tune = lp_ft(options).phases
    return Plan("wise-ft", (probe, replace(fine_tune, wise=True)))
