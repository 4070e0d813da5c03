"""The frozen-prefix cache and length-aware batches: freeze:K runs its frozen groups once, and gives what running
them every batch gives; texts are batched by length and put back in order."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from headstart import backbones, strategies
from headstart.batching import LengthGroupedBatches, length_order
from headstart.config import BackboneSpec, DataSpec, TrainSpec
from headstart.data import load_task
from headstart.model import TransferModel
from headstart.train import cache, run

LONG = "a considerably longer review that goes on about the plot, the actors, the music and the ending " * 3
TEXTS = ["fine", LONG, "not good at all", "an enjoyable film with a weak second half", "ok", LONG[:90]]


@pytest.fixture(scope="module")
def reviews():
    return load_task(DataSpec(train="builtin:rotten-tomatoes", train_size=100), seed=0)


@pytest.fixture(scope="module")
def digits():
    return load_task(DataSpec(train="builtin:digits", train_size=150), seed=0)


def _backbone(name):
    return backbones.load(BackboneSpec(name=name, image_size=32, max_length=48))


def _fit(data, name, strategy, monkeypatch, limit=None):
    """A model trained by the strategy, with the prefix cache allowed (limit None) or not ("0")."""
    if limit is None:
        monkeypatch.delenv("HEADSTART_PREFIX_MAX", raising=False)
    else:
        monkeypatch.setenv("HEADSTART_PREFIX_MAX", limit)
    cache.clear_memory_cache()
    data.notes.clear()
    torch.manual_seed(0)
    model = TransferModel(_backbone(name), data.task)
    history = run(model, data, strategies.plan(strategy, epochs=2), TrainSpec(batch_size=16), "fp32",
                  show_progress=False)
    return model, history, list(data.notes)


@pytest.mark.parametrize("name, data_name, strategy", [("minilm-l6", "reviews", "freeze:3"),
                                                        ("efficientnet-lite0", "digits", "freeze:4")])
def test_freeze_k_on_cached_activations_trains_as_running_the_frozen_groups_every_batch(
        name, data_name, strategy, request, monkeypatch, tmp_path):
    monkeypatch.setenv("HEADSTART_CACHE", str(tmp_path))
    data = request.getfixturevalue(data_name)
    cached, cached_history, cached_notes = _fit(data, name, strategy, monkeypatch)
    plain, plain_history, plain_notes = _fit(data, name, strategy, monkeypatch, limit="100KB")
    assert any("frozen-prefix cache" in note for note in cached_notes)
    assert any("run on every batch: their activations would take" in note for note in plain_notes)
    # the same batches, the same steps: the same losses and weights, up to float rounding
    assert [r.val_loss for r in cached_history.records] == pytest.approx(
        [r.val_loss for r in plain_history.records], rel=1e-3, abs=1e-4)
    for (key, a), b in zip(cached.state_dict().items(), plain.state_dict().values()):
        assert torch.allclose(a, b, atol=2e-4), key
    inputs = data.test.inputs[:20]
    assert np.allclose(cached.predict_proba(inputs), plain.predict_proba(inputs), atol=1e-4)


def test_the_frozen_groups_run_once_and_validation_reads_their_cached_activations(reviews, monkeypatch, tmp_path):
    monkeypatch.setenv("HEADSTART_CACHE", str(tmp_path))
    monkeypatch.delenv("HEADSTART_PREFIX_MAX", raising=False)
    cache.clear_memory_cache()
    model = TransferModel(_backbone("minilm-l6"), reviews.task)
    seen = []
    embeddings = model.backbone.layer_groups()[0].modules[0]
    embeddings.register_forward_hook(lambda module, args, output: seen.append(output.shape[0]))
    run(model, reviews, strategies.plan("freeze:2", epochs=3), TrainSpec(batch_size=16), "fp32", show_progress=False)
    # the prefix check's few examples, then each training and validation example once: not once per epoch
    assert sum(seen) <= 2 * 4 + len(reviews.train) + len(reviews.val)


def test_what_cannot_be_cut_runs_the_frozen_groups_every_batch_and_says_why(monkeypatch, tmp_path):
    monkeypatch.setenv("HEADSTART_CACHE", str(tmp_path))
    words = load_task(DataSpec(train="builtin:brown-pos", train_size=40), seed=0)
    _, history, notes = _fit(words, "minilm-l6", "freeze:5", monkeypatch)
    assert any("run on every batch: a tag per word" in note for note in notes)
    assert len(history.records) == 3
    chunked = backbones.load(BackboneSpec(name="minilm-l6", long="chunk"))
    assert "--long chunk" in chunked.cut(2)


@pytest.mark.parametrize("name", ["minilm-l6", "efficientnet-lite0", "timm:resnet18:random"])
def test_every_cut_a_backbone_offers_reproduces_its_forward_pass(name, digits):
    backbone = _backbone(name)
    inputs = TEXTS if backbone.modality == "text" else list(digits.train.inputs[:3])
    offered = [k for k in range(len(backbone.layer_groups()) + 1) if not isinstance(backbone.cut(k), str)]
    assert offered and 0 not in offered and len(backbone.layer_groups()) not in offered
    assert all(backbone.cut(k).reproduces(inputs) for k in offered)


def test_a_cut_that_does_not_follow_the_forward_pass_is_refused(digits):
    vit = backbones.load(BackboneSpec(name="timm:vit_tiny_patch16_224:random"))
    images = list(digits.train.inputs[:2])
    assert not any(not isinstance(vit.cut(k), str) and vit.cut(k).reproduces(images) for k in range(1, 4))


def test_texts_run_longest_first_and_come_back_in_input_order():
    backbone = _backbone("minilm-l6")
    order = length_order(TEXTS)
    assert [len(TEXTS[i]) for i in order] == sorted(map(len, TEXTS), reverse=True)
    assert list(length_order([np.zeros((4, 4))] * 3)) == [0, 1, 2]
    together = cache.embed(backbone, TEXTS, batch_size=2, show_progress=False, fingerprint="none")
    alone = torch.cat([backbone.eval()(backbone.preprocess([text])) for text in TEXTS]).detach()
    assert torch.allclose(together, alone, atol=1e-5)


def test_length_grouped_batches_hold_each_example_once_in_runs_of_similar_length():
    lengths = np.random.default_rng(0).integers(1, 500, size=1000)
    batches = list(LengthGroupedBatches(lengths, 16, torch.Generator().manual_seed(1)))
    assert sorted(i for b in batches for i in b) == list(range(1000))
    assert [len(b) for b in batches[:-1]] == [16] * 62 and len(batches[-1]) == 8  # the short batch last
    padded = sum(len(b) * lengths[b].max() for b in batches)
    at_random = sum(len(b) * lengths[b].max() for b in np.array_split(np.arange(1000), 63))
    assert padded < 0.6 * at_random
    again = list(LengthGroupedBatches(lengths, 16, torch.Generator().manual_seed(1)))
    other = list(LengthGroupedBatches(lengths, 16, torch.Generator().manual_seed(2)))
    assert again == batches and other != batches
