"""The three benefits of transfer on hand-made learning curves."""

import pytest

from headstart.evaluate.benefits import area_under_curve, benefits, epochs_to_reach, paired_difference, start

# epoch 0 is before training
SCRATCH = [[0.10, 0.20, 0.40, 0.55, 0.60], [0.10, 0.25, 0.45, 0.55, 0.62], [0.10, 0.20, 0.35, 0.50, 0.58]]
PRETRAINED = [[0.10, 0.70, 0.75, 0.78], [0.10, 0.72, 0.76, 0.80], [0.10, 0.69, 0.74, 0.77]]  # stopped early


def test_start_is_the_accuracy_after_the_first_epoch():
    assert start(SCRATCH[0]) == 0.20 and start([0.5]) == 0.5


def test_area_under_curve_pads_an_early_stopped_curve_with_its_last_value():
    assert area_under_curve(PRETRAINED[0], 4) == pytest.approx((0.70 + 0.75 + 0.78 + 0.78) / 4)
    assert area_under_curve(SCRATCH[0], 4) == pytest.approx((0.20 + 0.40 + 0.55 + 0.60) / 4)


def test_epochs_to_reach_a_target():
    assert epochs_to_reach(SCRATCH[0], 0.54) == 3
    assert epochs_to_reach(PRETRAINED[0], 0.54) == 1
    assert epochs_to_reach(SCRATCH[0], 0.99) is None


def test_a_consistent_gain_is_significant_and_a_noisy_one_is_not():
    consistent = paired_difference([0.80, 0.82, 0.79], [0.60, 0.62, 0.58])
    assert consistent["delta_vs_scratch"] == pytest.approx(0.2033, abs=1e-3) and consistent["significant"]
    assert consistent["interval"][0] > 0
    noisy = paired_difference([0.70, 0.55, 0.66], [0.60, 0.64, 0.61])
    assert not noisy["significant"] and noisy["interval"][0] < 0 < noisy["interval"][1]
    single = paired_difference([0.9], [0.5])
    assert single["delta_vs_scratch"] == pytest.approx(0.4) and not single["significant"] and single["p_value"] is None


def test_benefits_of_a_clear_transfer():
    gains = benefits(PRETRAINED, [0.79, 0.81, 0.78], SCRATCH, [0.60, 0.61, 0.57])
    assert gains["start"]["delta_vs_scratch"] == pytest.approx((0.50 + 0.47 + 0.49) / 3)
    assert gains["start"]["significant"] and gains["asymptote"]["significant"] and gains["slope"]["significant"]
    # 90% of each fold's scratch final accuracy (0.540, 0.558, 0.522): pretrained after 1 epoch, scratch after 3, 4, 4
    assert gains["slope"]["epochs_to_90pct_of_scratch"] == 1.0
    assert gains["slope"]["scratch_epochs_to_90pct"] == pytest.approx((3 + 4 + 4) / 3)


def test_the_bootstrap_of_accuracy_resamples_right_and_wrong_as_recomputing_every_metric_does():
    import numpy as np

    from headstart.evaluate.noise import score_interval
    from headstart.tasks.classification import ClassificationTask

    rng = np.random.default_rng(3)
    truth = [str(c) for c in rng.integers(0, 3, 300)]
    predicted = [t if rng.random() < 0.7 else "0" for t in truth]
    task = ClassificationTask(["0", "1", "2"])
    fast = score_interval(task, truth, predicted, seed=5)

    class Recomputed(ClassificationTask):  # the generic path: every metric on every resample
        def example_scores(self, truth, predicted):
            return None

    slow = score_interval(Recomputed(["0", "1", "2"]), truth, predicted, seed=5)
    assert fast["low"] == pytest.approx(slow["low"]) and fast["high"] == pytest.approx(slow["high"])
    assert fast["low"] < np.mean([t == p for t, p in zip(truth, predicted)]) < fast["high"]
