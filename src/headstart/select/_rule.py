"""The rule of thumb behind `advise`: (small | large) x (similar | different) -> a strategy, in words.

    recommend(labels_per_class=30, similarity=0.7, probe_pretrained=0.9, probe_random=0.6, n_groups=9,
              method="probe-vs-random").strategy   # 'linear-probe-cv'
"""

from __future__ import annotations

from dataclasses import dataclass

from ..baselines import BASELINE_NAME

__all__ = ["Decision", "recommend", "PROBE", "FEW_SHOT_TEXT", "CLASSICAL_AHEAD", "SMALL_BELOW", "SIMILAR_AT",
           "early_freeze", "probe_similarity"]

# The head-only strategy the advice and auto use: the head fitted to convergence with its L2 strength
# cross-validated, not AdamW with early stopping on a held-out split. At 16 labels per class on four text tasks
# over 5 seeds (bench/probe_cv.py) it was 5.9 points above linear-probe and 0.2 below a tuned scikit-learn
# LogisticRegression on the same features, and it gives up no training example to validation.
PROBE = "linear-probe-cv"

# Small text classification: setfit, whatever the similarity. At 16 labels per class (bench/alternatives.py,
# exploration seed 100) it was the best of headstart's strategies on all four text tasks, 0.2-4.4 points above
# linear-probe-cv, where the advised freeze:1 fell to chance on one task and linear-probe-cv led on none; SetFit
# (Tunstall et al., 2022) beat full fine-tuning at 8-64 labels per class on its benchmarks. Images keep the quadrants:
# on MNIST at 16 per class freeze:2 was 18 points above setfit. Confirmed on fresh seeds 0-4: auto chose setfit on
# every text run, 2.4-7.2 points above frozen features + a tuned logistic regression on three text tasks and level
# on debates, and (with 16 pairs a step) 0.1-3.5 points below the setfit package, beyond the noise on debates only
# (bench/README.md).
FEW_SHOT_TEXT = "setfit"

# Small data whose classical features (TF-IDF, or 16x16 grey pixels) separate the classes better than the
# pretrained ones, by the same probe and by at least CLASSICAL_AHEAD: the backbone gives no head start, so the
# classical baseline is advised and the backbone's strategies must beat it. Decided on exploration seeds 100-102 at
# 16 labels per class (bench/alternatives.py; builtin:digits and fashion-mnist, not the benchmark's MNIST): the
# pixels' probe was 13-23 points above EfficientNet-Lite0's on all six image runs; the baseline was 8.2-9.6 points
# above the advised freeze:2 and 1.0-6.6 above the best backbone strategy on digits, 0-2.4 below the best on
# fashion-mnist. On the four text tasks the TF-IDF probe (its terms projected by truncated SVD) led MiniLM's on 3 of
# 12 runs, all debates, once by more than CLASSICAL_AHEAD (+0.06); texts with one class each get setfit first anyway
# (pairs training moved MiniLM past TF-IDF on e-mails where its frozen features were behind).
CLASSICAL_AHEAD = 0.05

# Small: a median class with fewer than 100 labelled examples. That is the few-shot / low-data regime
# of the transfer literature (VTAB-1k trains on 1,000 examples, 10-100 per class for most of its tasks;
# BiT and Kornblith et al., 2019, report few-shot transfer at 1-25 per class), where a linear probe on
# good features matches or beats fine-tuning, and fine-tuning every weight risks overfitting.
SMALL_BELOW = 100

# Similar, by method:
# - domain-distance: similarity = 1 - PAD / 2. PAD < 1 (similarity > 0.5) means a domain classifier on
#   the frozen features still errs on more than a quarter of the examples: the target looks like the source.
# - probe-vs-random: similarity = err_random / (err_random + err_pretrained), 0.5 when the pretrained
#   features are no better than the same architecture's random ones. Similar from 0.57: the pretrained
#   features remove at least a quarter of the random features' probe errors (err_pre <= 0.75 err_random).
SIMILAR_AT = {"domain-distance": 0.5, "probe-vs-random": 0.57}
NO_BETTER_THAN_RANDOM_AT = 0.5  # probe similarity at or below this: pretraining brings nothing linear-probe-visible


@dataclass(frozen=True)
class Decision:
    size: str
    similar: bool
    pretrained_beats_random: bool
    quadrant: str
    strategy: str
    alternatives: list[str]   # the nearest other strategies, most plausible first (auto races them)
    reason: str


def early_freeze(n_groups: int) -> str:
    """freeze:K with K the early quarter of the layer groups (at least one): the general early features stay,
    the rest adapt. Yosinski et al. (2014) found the first layers general and transfer falling off after them;
    on the choose benchmark's image tasks (EfficientNet-Lite0, 9 groups, seeds 0-5) freeze:2 beat freeze:4,
    the early half this rule used before, in 12 of 12 runs, by 1.2 points on average (paired t-test
    p = 0.0004), and again in 4 of 4 on the fresh seeds 6 and 7. compare's default freeze:K still takes the
    half: the middle of the range, for a survey."""
    return f"freeze:{max(1, n_groups // 4)}"


def recommend(*, labels_per_class: float, similarity: float, probe_pretrained: float, probe_random: float,
              n_groups: int, method: str, text_pairs: bool = False, probe_classical: float | None = None) -> Decision:
    """The strategy of the quadrant the measurements put the task in, with the reasoning in plain words.
    `text_pairs`: the examples are texts with one class each, which setfit can pair. `probe_classical`: the same
    probe on the classical baseline's features (None where the task has no baseline)."""
    small = labels_per_class < SMALL_BELOW
    classical_ahead = probe_classical is not None and probe_classical >= probe_pretrained + CLASSICAL_AHEAD
    similar = similarity >= SIMILAR_AT[method]
    beats_random = probe_similarity(probe_pretrained, probe_random) > NO_BETTER_THAN_RANDOM_AT
    size_words = (f"{labels_per_class:g} labels per class (median) is {'small' if small else 'large'} "
                  f"({'under' if small else 'at least'} {SMALL_BELOW})")
    if method == "domain-distance":
        sim_words = (f"the data is {'similar' if similar else 'different'} to the source data (similarity "
                     f"{similarity:.2f} {'>=' if similar else '<'} {SIMILAR_AT[method]}, from the proxy A-distance)")
    else:
        sim_words = (f"the frozen pretrained features separate the classes {'clearly better than' if similar else 'not much better than' if beats_random else 'no better than'} "
                     f"random ones (linear probe {probe_pretrained:.2f} against {probe_random:.2f}; similarity "
                     f"{similarity:.2f} {'>=' if similar else '<'} {SIMILAR_AT[method]})")
    early = early_freeze(n_groups)
    if small and text_pairs:
        strategy, others = FEW_SHOT_TEXT, [PROBE, early]
        why = ("fine-tune the backbone on pairs of examples (the same class close, others apart), then fit a head on "
               "its features: with few labels, pairs multiply what the body learns from, where training every weight "
               "on the task's loss overfits a handful of texts")
    elif small and classical_ahead:
        strategy, others = BASELINE_NAME, [PROBE, "lp-ft"]
        why = (f"fit the classical baseline (TF-IDF or pixels + a tuned linear model): its features separate the classes "
               f"better than the pretrained ones by the same probe ({probe_classical:.2f} against "
               f"{probe_pretrained:.2f}), so the backbone gives no head start here, and its strategies have to beat it")
    elif small and similar:
        strategy, others = PROBE, ["lp-ft", early]
        why = "train only a new head on the frozen features: they already fit, and few labels cannot safely move more weights"
    elif small:
        strategy, others = early, [PROBE, "full"]
        why = (f"keep the early quarter of the {n_groups} layer groups (general edges and textures, or token "
               "statistics) frozen and adapt the later, more specific ones: few labels, but features that need to change")
    elif similar:
        strategy, others = "full", ["lp-ft", PROBE]
        why = ("fine-tune every layer from the pretrained weights, the pretrained part at a 10x smaller learning "
               "rate than the new head: enough labels to adapt every layer, and features close enough to keep")
    elif beats_random:
        strategy, others = "full", [early, PROBE]
        why = "fine-tune every layer: enough labels, and features far from what this data needs"
    else:
        strategy, others = "scratch", ["full", early]
        why = ("train the architecture from random weights: enough labels, and the pretrained features are no "
               "better than random ones here")
    quadrant = f"{'small' if small else 'large'}+{'similar' if similar else 'different'}"
    return Decision("small" if small else "large", similar, beats_random, quadrant, strategy, others,
                    f"{size_words}, and {sim_words}: {strategy}, i.e. {why}.")


def probe_similarity(pretrained: float, random: float) -> float:
    """0..1 from the two probes' errors: 0.5 when pretrained features are no better than random ones,
    1 when they leave none of the random ones' errors, 0 when they only add errors."""
    err_pretrained, err_random = 1.0 - pretrained, 1.0 - random
    if err_pretrained + err_random == 0:
        return 0.5
    return err_random / (err_random + err_pretrained)
