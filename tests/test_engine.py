"""The engine: frozen means frozen, a frozen backbone is embedded once, plans drive everything."""

from __future__ import annotations

import pytest
import torch

from headstart import backbones, strategies
from headstart.config import BackboneSpec, DataSpec, TrainSpec
from headstart.data import load_task
from headstart.model import TransferModel
from headstart.train import cache, run
from headstart.train.events import snapshot


@pytest.fixture(scope="module")
def digits():
    return load_task(DataSpec(train="builtin:digits", train_size=150), seed=0)


def _model(data, name="efficientnet-lite0"):
    return TransferModel(backbones.load(BackboneSpec(name=name, image_size=32)), data.task)


def test_frozen_groups_keep_their_weights_and_batchnorm_statistics(digits):
    model = _model(digits)
    before = snapshot(model.backbone)
    groups = model.backbone.layer_groups()
    run(model, digits, strategies.plan("freeze:3", epochs=2), TrainSpec(), "fp32", show_progress=False)
    frozen = {id(p) for g in groups[:3] for m in g.modules for p in list(m.parameters()) + list(m.buffers())}
    after = model.backbone.state_dict(keep_vars=True)
    changed_frozen = [k for k, v in after.items() if id(v) in frozen and not torch.equal(v.detach(), before[k])]
    changed_trained = [k for k, v in after.items() if id(v) not in frozen and not torch.equal(v.detach(), before[k])]
    assert changed_frozen == []
    assert any(k.endswith("weight") for k in changed_trained)
    # fine-tuning keeps the pretrained BatchNorm statistics; small batches would only add noise to them
    assert not any("running_" in k for k in changed_trained)


def test_frozen_groups_stay_in_eval_mode_while_the_rest_trains(digits):
    model = _model(digits)
    model.backbone.set_trainable(2)
    model.train()
    groups = model.backbone.layer_groups()
    assert all(not m.training for g in groups[:2] for m in g.modules)
    assert all(m.training for g in groups[2:] for m in g.modules)
    assert [p.requires_grad for g in groups for p in g.parameters()] == \
           [i >= 2 for i, g in enumerate(groups) for _ in g.parameters()]


def test_a_long_linear_probe_embeds_each_example_once_and_reruns_embed_nothing(digits, monkeypatch, tmp_path):
    monkeypatch.setenv("HEADSTART_CACHE", str(tmp_path))
    cache.clear_memory_cache()
    calls = []

    def counted(model):
        inner = model.backbone.forward
        model.backbone.forward = lambda batch: calls.append(len(next(iter(batch.values())))) or inner(batch)
        return model

    plan = strategies.plan("linear-probe", epochs=20)
    first = counted(_model(digits))
    history = run(first, digits, plan, TrainSpec(), "fp32", show_progress=False)
    assert sum(calls) == len(digits.train) + len(digits.val)
    assert len(history.records) == 21 and history.cached_phases == ["probe"]

    calls.clear()
    run(counted(_model(digits)), digits, plan, TrainSpec(), "fp32", show_progress=False)
    assert sum(calls) == 0  # same weights, same inputs: the features come from memory
    cache.clear_memory_cache()
    run(counted(_model(digits)), digits, plan, TrainSpec(), "fp32", show_progress=False)
    assert sum(calls) == 0 and list(tmp_path.glob("features/*.safetensors"))  # ... and from disk


def test_the_cache_key_follows_the_weights(digits, monkeypatch, tmp_path):
    monkeypatch.setenv("HEADSTART_CACHE", str(tmp_path))
    model = _model(digits)
    features = cache.embed(model.backbone, digits.val.inputs, show_progress=False)
    with torch.no_grad():
        next(model.backbone.parameters()).add_(1.0)
    changed = cache.embed(model.backbone, digits.val.inputs, show_progress=False)
    assert features.shape == (len(digits.val), model.backbone.dim)
    assert not torch.equal(features, changed)


def test_scratch_starts_from_random_weights_of_the_same_architecture(digits):
    model = _model(digits)
    pretrained = snapshot(model.backbone)
    history = run(model, digits, strategies.plan("scratch", epochs=1), TrainSpec(), "fp32", show_progress=False)
    after = model.backbone.state_dict()
    assert not torch.equal(after["model.conv_stem.weight"], pretrained["model.conv_stem.weight"])
    assert not torch.equal(after["model.bn1.running_mean"], pretrained["model.bn1.running_mean"])  # stats learnt anew
    assert history.cached_phases == []


def test_plans_are_data_that_print_and_round_trip():
    plan = strategies.plan("lp-ft", epochs=4, lr=0.01)
    assert [p.epochs for p in plan.phases] == [4, 4]
    assert plan.phases[0].train_from is None and plan.phases[1].train_from == 0
    assert strategies.Plan.from_dict(plan.to_dict()) == plan
    text = plan.describe(7)
    assert "features cached" in text and "all 7 backbone groups" in text


def test_features_of_a_subset_come_from_the_cache(digits, monkeypatch, tmp_path):
    monkeypatch.setenv("HEADSTART_CACHE", str(tmp_path))
    cache.clear_memory_cache()
    model = _model(digits)
    full = cache.embed(model.backbone, digits.train.inputs, show_progress=False)
    calls = []
    inner = model.backbone.forward
    model.backbone.forward = lambda batch: calls.append(1) or inner(batch)
    subset = cache.embed(model.backbone, digits.train.inputs[5:25], show_progress=False)
    assert calls == [] and torch.equal(subset, full[5:25])


def test_a_few_shot_phase_is_stretched_to_min_steps(digits):
    from headstart.data.splits import few_shot
    from headstart.data import TaskData

    tiny = TaskData(few_shot(digits.train, 2, seed=0), digits.val, digits.test, digits.task, "image")
    plan = strategies.plan("linear-probe", epochs=2)

    def training_steps(spec):
        model, steps = _model(tiny), []
        head = model.head.forward
        model.head.forward = lambda x: steps.append(len(x)) or head(x)
        history = run(model, tiny, plan, spec, "fp32", show_progress=False)
        return sum(1 for n in steps if n == len(tiny.train)), len(history.records)

    assert training_steps(TrainSpec()) == (2, 1 + 2)  # 20 examples: one batch an epoch
    assert training_steps(TrainSpec(min_steps=20)) == (20, 1 + 2)  # ten passes an epoch, validated per epoch


def test_callbacks_see_the_loops_events_in_order_and_can_end_a_phase(digits):
    from headstart.train import Callback

    seen = []

    class Spy(Callback):
        def on_phase_start(self, state):
            seen.append(("start", state.phase.name))

        def on_epoch_end(self, state):
            seen.append(("epoch", state.history.records[-1].epoch))
            if state.number == 0 and state.history.records[-1].epoch == 2:
                state.stop = True  # end the first phase after its second of five epochs

        def on_phase_end(self, state):
            seen.append(("end", state.phase.name))

        def on_fit_end(self, state):
            seen.append(("fit",))

    plan = strategies.plan("lp-ft", epochs=5)
    history = run(_model(digits), digits, plan, TrainSpec(), "fp32", show_progress=False, callbacks=[Spy()])
    names = [p.name for p in plan.phases]
    assert seen[:4] == [("start", names[0]), ("epoch", 1), ("epoch", 2), ("end", names[0])]
    assert seen[4:6] == [("start", names[1]), ("epoch", 3)] and seen[-2:] == [("end", names[1]), ("fit",)]
    assert [r.epoch for r in history.records] == list(range(len(history.records)))  # 0, then every epoch
    assert history.records[history.best_epoch].val_accuracy == history.best_val_accuracy
