"""setfit: the backbone trained on pairs of examples (the same class close, the others apart), then a head fitted
by L-BFGS on its features."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from headstart import backbones, strategies
from headstart.config import BackboneSpec, DataSpec, TrainSpec
from headstart.data import load_task
from headstart.model import TransferModel
from headstart.train import run
from headstart.train import pairs
from headstart.train.pairs import draw_pairs

from test_bad_input import one_error, run_cli


def test_pairs_give_every_class_its_share_and_alternate_same_and_other():
    classes = np.array([0] * 50 + [1] * 5 + [2])  # unbalanced, and a class of one
    anchors, partners, same = draw_pairs(classes, 600, np.random.default_rng(0)).T
    assert list(np.bincount(classes[anchors])) == [200, 200, 200]
    assert list(same) == [1, 0] * 300
    positive = same == 1
    assert (classes[anchors][positive] == classes[partners][positive]).all()
    assert (classes[anchors][~positive] != classes[partners][~positive]).all()
    several = positive & (classes[anchors] != 2)  # another member of the class wherever it has one
    assert (anchors[several] != partners[several]).all()


def _separation(model: TransferModel, examples, targets) -> float:
    """Mean cosine similarity of training features within a class minus across classes."""
    model.eval()
    with torch.no_grad():
        features = F.normalize(model.backbone(model.backbone.preprocess(examples.inputs)), dim=-1)
    similar = features @ features.T
    same = torch.from_numpy(targets[:, None] == targets[None, :])
    return float(similar[same].mean() - similar[~same].mean())


def test_setfit_pulls_the_classes_apart_then_fits_a_plain_head(monkeypatch):
    monkeypatch.setattr(pairs, "MAX_PAIRS", 320)  # 20 steps of 16 pairs (at lr 1e-4) move the classes apart
    data = load_task(DataSpec(train="builtin:rotten-tomatoes", train_size=40), seed=0)
    # --batch-size counts examples a step: 32 is 16 pairs (SetFit's batch), split evenly between processes
    assert pairs.pairs_per_batch(32) == 16 and pairs.pairs_per_batch(1) == 1 and pairs.pairs_per_batch(36, 4) == 16
    torch.manual_seed(0)
    model = TransferModel(backbones.load(BackboneSpec(name="minilm-l6", max_length=32)), data.task)
    targets = data.targets(data.train)
    before = _separation(model, data.train, targets)
    history = run(model, data, strategies.plan("setfit", lr=1e-4), TrainSpec(batch_size=32), "fp32", show_progress=False)
    after = _separation(model, data.train, targets)
    assert after > before + 0.05, (before, after)
    assert [r.phase for r in history.records] == ["pairs", "pairs", "head"]
    assert any("L-BFGS" in note for note in data.notes)
    assert type(model.head) is torch.nn.Linear  # the saved model is the plain architecture


def test_setfit_is_refused_in_one_line_where_examples_have_no_single_class(tmp_path):
    code, output = run_cli("fit", "builtin:ising", "--train-size", "60", "--backbone", "efficientnet-lite0",
                           "--image-size", "32", "--strategy", "setfit", "--out", tmp_path / "run")
    assert "setfit pairs examples by their class" in one_error(code, output)
    assert not (tmp_path / "run").exists()
    code, output = run_cli("fit", "builtin:digits", "--backbone", "efficientnet-lite0", "--strategy", "setfit",
                           "--dry-run")
    assert code == 0 and "pairs of examples" in output, output


def test_auto_advises_setfit_for_a_few_labelled_texts_and_races_it_against_the_probe(review_csvs, monkeypatch,
                                                                                     tmp_path):
    import json

    import headstart

    monkeypatch.setattr(pairs, "MAX_PAIRS", 160)  # 5 steps of pairs: the race's wiring, not SetFit's accuracy
    train, test = review_csvs  # 54 reviews a class: small
    result = headstart.fit(str(train), str(test), backbone="minilm-l6", max_length=32, strategy="auto",
                           out=tmp_path / "run", show_progress=False)
    record = json.loads((tmp_path / "run" / "auto.json").read_text())
    assert record["advice"]["strategy"] == "setfit" and "setfit, i.e. fine-tune the backbone on pairs" in \
        record["advice"]["reason"]
    assert sorted(record["candidates"]) == ["baseline", "linear-probe-cv", "setfit"]  # setfit trains every weight
    assert result.plan.strategy == record["winner"] in record["candidates"]
    # A tag per word has no class per example to pair, images are not texts: both keep the quadrants.
    from headstart.select._rule import recommend
    from headstart.select.advise import text_pairs
    from headstart.tasks import TASKS

    assert not text_pairs("text", TASKS.get("tokens").from_labels([["nn", "vb"], ["dt", "nn"]]))
    assert not text_pairs("image", TASKS.get("classification").from_labels(["a", "b"]))

    common = dict(labels_per_class=16, similarity=0.3, probe_pretrained=0.9, probe_random=0.6, n_groups=7,
                  method="probe-vs-random")
    assert recommend(**common, text_pairs=False).strategy == "freeze:1"
    assert recommend(**dict(common, labels_per_class=500), text_pairs=True).strategy == "full"
