"""Regularised fine-tuning: l2sp, llrd, gradual, bitfit, lora and wise-ft do what they say to the weights, and a LoRA
run saves a plain model that reloads bit for bit."""

from __future__ import annotations

import csv
from dataclasses import replace

import pytest
import torch

import headstart
from headstart import backbones, strategies
from headstart.config import BackboneSpec, DataSpec, TrainSpec
from headstart.data import load_task
from headstart.model import TransferModel
from headstart.train import Callback, run
from headstart.train.events import WiSE, snapshot
from test_bad_input import one_error, run_cli


@pytest.fixture(scope="module")
def digits():
    return load_task(DataSpec(train="builtin:digits", train_size=150), seed=0)


def _model(data):
    return TransferModel(backbones.load(BackboneSpec(name="efficientnet-lite0", image_size=32)), data.task)


class Drift(Callback):
    """After every epoch: which backbone groups changed since the previous epoch, and how far all weights are from
    where training started."""

    def __init__(self):
        self.changed, self.distance = [], []

    def on_phase_start(self, state):
        self.start = self.last = self._weights(state)

    def on_epoch_end(self, state):
        now = self._weights(state)
        groups = state.model.backbone.layer_groups()
        self.changed.append([i for i, g in enumerate(groups) if any(not torch.equal(now[id(p)], self.last[id(p)])
                                                                    for p in g.parameters())])
        self.distance.append(sum(float((now[k] - self.start[k]).norm() ** 2) for k in now) ** 0.5)
        self.last = now

    @staticmethod
    def _weights(state):
        return {id(p): p.detach().clone() for p in state.model.backbone.parameters()}


def _train(data, name, epochs=3, strength=None, **spec):
    model, drift, plan = _model(data), Drift(), strategies.plan(name, epochs=epochs)
    if strength is not None:
        plan = replace(plan, phases=(replace(plan.phases[0], l2sp=strength),))
    run(model, data, plan, TrainSpec(patience=epochs, **spec), "fp32", show_progress=False, callbacks=[drift])
    return model, drift


def test_l2sp_keeps_the_weights_closer_to_the_pretrained_ones_than_full_on_the_same_steps(digits):
    # A weight strays at most about lr per step, and L2-SP holds it within about 1 / strength of its start: it
    # shows once the steps could take a weight further than that (30 steps of at most 1e-4 against 1e-3 here).
    _, full = _train(digits, "full", epochs=2, batch_size=8)
    _, l2sp = _train(digits, "l2sp", epochs=2, strength=1000, batch_size=8)
    assert all(a < 0.8 * b for a, b in zip(l2sp.distance, full.distance)), (l2sp.distance, full.distance)


def test_llrd_gives_each_group_below_the_top_0_8_times_the_rate_of_the_one_above(digits):
    from headstart.train.engine import _param_groups

    model = _model(digits)
    model.backbone.set_trainable(0)
    groups = _param_groups(model, strategies.plan("llrd").phases[0])  # as given to AdamW, before the warm-up
    assert groups[0]["lr"] == 1e-3 and groups[-1]["lr"] == pytest.approx(1e-4)
    assert [g["lr"] for g in groups[1:]] == pytest.approx([1e-4 * 0.8 ** (len(groups) - 2 - i)
                                                           for i in range(len(groups) - 1)])


def test_gradual_unfreezes_one_group_per_epoch_from_the_top(digits):
    n_groups = len(_model(digits).backbone.layer_groups())
    _, drift = _train(digits, "gradual", epochs=3)
    assert drift.changed == [[], [n_groups - 1], [n_groups - 2, n_groups - 1]]


def test_bitfit_trains_only_the_backbones_biases(digits):
    model = _model(digits)
    before = snapshot(model.backbone)
    run(model, digits, strategies.plan("bitfit", epochs=2), TrainSpec(), "fp32", show_progress=False)
    changed = [k for k, v in model.backbone.state_dict().items() if not torch.equal(v, before[k])]
    assert changed and all(k.endswith("bias") for k in changed), changed


class FineTuneStart(Callback):
    """The weights the second phase starts from (the probe's model in lp-ft and wise-ft)."""

    def on_phase_start(self, state):
        if state.number == 1:
            self.weights = snapshot(state.model)


def test_wise_ft_keeps_the_mix_of_the_probed_and_fine_tuned_weights_that_validates_best(digits, monkeypatch):
    # wise-ft trains exactly as lp-ft (same seed, fp32), then mixes: its weights are lp-ft's end mixed with the start.
    # Mixes without 1 (the fine-tune's own end, which validates best here), so that the kept weights are a true mix.
    monkeypatch.setattr(WiSE, "MIXES", (0.0, 0.3, 0.6))
    plan_of = lambda name: strategies.plan(name, epochs=2)  # noqa: E731
    torch.manual_seed(0)
    fine_tuned = _model(digits)
    run(fine_tuned, digits, plan_of("lp-ft"), TrainSpec(patience=2), "fp32", show_progress=False)
    torch.manual_seed(0)
    mixed, start = _model(digits), FineTuneStart()
    history = run(mixed, digits, plan_of("wise-ft"), TrainSpec(patience=2), "fp32", show_progress=False,
                  callbacks=[start])
    note = next(n for n in reversed(digits.notes) if "WiSE-FT" in n)
    mix = float(note.split("(WiSE-FT), ")[1].split(" x end")[0])
    scores = dict(map(float, pair.split(": ")) for pair in note.split("validation (")[1].rstrip(")").split(", "))
    assert scores[mix] == max(scores.values()) and sorted(scores) == [0.0, 0.3, 0.6]
    assert history.best_val_accuracy == pytest.approx(scores[mix], abs=5e-4)
    end = fine_tuned.state_dict()
    for key, value in mixed.state_dict().items():
        expected = torch.lerp(start.weights[key], end[key], mix) if value.is_floating_point() else end[key]
        assert torch.allclose(value, expected, atol=1e-6), key
    assert not torch.allclose(mixed.head.weight, fine_tuned.head.weight)


def test_a_lora_run_saves_merged_plain_weights_that_reload_bit_for_bit(review_csvs, tmp_path):
    train, test = review_csvs
    pretrained = backbones.load(BackboneSpec(name="minilm-l6")).state_dict()
    result = headstart.fit(str(train), str(test), backbone="minilm-l6", strategy="lora", epochs=2, max_length=32,
                           out=tmp_path / "run", show_progress=False)
    weights = result.model.backbone.state_dict()
    assert sorted(weights) == sorted(pretrained)  # no LoRA factors left: the plain architecture
    changed = {k.rsplit(".", 2)[-2] for k in weights if not torch.equal(weights[k], pretrained[k])}
    assert changed == {"query", "value"}  # the merged low-rank updates, nothing else
    saved = list(csv.DictReader(open(tmp_path / "run" / "predictions.csv", encoding="utf-8")))
    headstart.predict(tmp_path / "run", str(test), output=tmp_path / "again.csv", show_progress=False)
    assert saved == list(csv.DictReader(open(tmp_path / "again.csv", encoding="utf-8")))


def test_lora_on_a_convnet_is_refused_in_one_line_before_any_work(tmp_path):
    error = one_error(*run_cli("fit", "builtin:digits", "--backbone", "efficientnet-lite0", "--strategy", "lora",
                               "--dry-run"))
    assert "attention projections" in error and "bitfit" in error
