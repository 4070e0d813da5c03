"""headstart pretrain: a backbone folder that fit reuses with no glue, changed weights, and one-line errors."""

from __future__ import annotations

import json

import pytest
import torch
import yaml
from accelerate.utils import set_seed

import headstart
from headstart import backbones
from headstart.config import BackboneSpec
from headstart.data import load_examples
from headstart.data.splits import stratified_split
from headstart.pretrain.contrastive import nt_xent
from headstart.pretrain.supervised import VAL_FRACTION
from headstart.train import embed
from test_bad_input import one_error, run_cli

ARCH = "timm:resnet10t:random"  # a small CNN from random init: seconds per epoch at 32 px
FOLDER_FILES = {"headstart-backbone.json", "backbone.safetensors", "config.yaml", "history.jsonl", "metrics.json",
                "pretrain_curve.png"}


def start_weights(seed: int = 0) -> dict[str, torch.Tensor]:
    """The weights a :random backbone starts from under `seed`, as the recipe seeds it."""
    set_seed(seed)
    return backbones.load(BackboneSpec(name=ARCH, image_size=32)).state_dict()


def changed(before: dict, after: dict) -> bool:
    assert before.keys() == after.keys()
    return any(not torch.equal(before[k], after[k]) for k in before if before[k].is_floating_point())


def test_nt_xent_rewards_finding_the_partner_view():
    pairs = torch.randn(8, 16)
    aligned = torch.cat([pairs, pairs + 0.01 * torch.randn(8, 16)])
    shuffled = torch.cat([pairs, torch.randn(8, 16)])
    loss_aligned, accuracy_aligned = nt_xent(aligned, 0.1)
    loss_shuffled, _ = nt_xent(shuffled, 0.1)
    assert accuracy_aligned == 1.0
    assert loss_aligned < loss_shuffled


def test_contrastive_backbone_learns_and_fit_reuses_it(tmp_path, digit_folders):
    train, test = digit_folders
    out = tmp_path / "simclr"
    result = headstart.pretrain(str(train), method="contrastive", backbone=ARCH, image_size=32, epochs=4,
                                batch_size=16, train_size=48, out=out, show_progress=False)
    assert result.out == out and FOLDER_FILES <= {p.name for p in out.iterdir()}
    losses = [row["loss"] for row in result.history]
    assert len(losses) == 4 and losses[-1] < losses[0], losses
    assert (out / "pretrain_curve.png").read_bytes()[:4] == b"\x89PNG"
    config = yaml.safe_load((out / "config.yaml").read_text())["pretrain"]
    assert config["epochs"] == 4 and config["lr"] == 1e-3 and config["temperature"] == 0.1
    assert config["precision"] in ("fp32", "bf16") and config["headstart_version"] == headstart.__version__
    assert json.loads((out / "metrics.json").read_text())["n_examples"] == 48

    pretrained = backbones.load(BackboneSpec(name=str(out)))
    assert changed(start_weights(), pretrained.state_dict())
    run = headstart.fit(str(train), str(test), backbone=str(out), strategy="linear-probe", epochs=3,
                        out=tmp_path / "run", show_progress=False)
    assert 0 <= run.metrics["accuracy"] <= 1 and run.metrics["n"] == len(list(test.rglob("*.png")))
    reused = run.model.backbone.state_dict()
    assert all(torch.equal(reused[k], v) for k, v in pretrained.state_dict().items())


def test_supervised_backbone_carries_its_source_head_into_fit(tmp_path, digit_folders):
    train, test = digit_folders
    out = tmp_path / "supervised"
    result = headstart.pretrain(str(train), method="supervised", backbone=ARCH, image_size=32, epochs=2,
                                out=out, show_progress=False)
    assert result.summary["strategy"] == "scratch"  # the default for a :random backbone
    assert [row["epoch"] for row in result.history] == [0, 1, 2]  # epoch 0: before training
    assert 0 <= result.summary["best_val_accuracy"] <= 1

    pretrained = backbones.load(BackboneSpec(name=str(out)))
    head = pretrained.source_head
    assert head is not None and head.classes == ["0", "1", "2", "3"]
    assert head.weight.shape == (4, pretrained.dim) and head.bias.shape == (4,)
    assert changed(start_weights(), pretrained.state_dict())
    # The folder holds the best epoch's backbone (BatchNorm statistics included) and that epoch's head:
    # together they score exactly the validation accuracy the summary reports.
    precision = yaml.safe_load((out / "config.yaml").read_text())["pretrain"]["precision"]
    _, val = stratified_split(load_examples(str(train)), VAL_FRACTION, 0)
    features = embed(pretrained, val.inputs, 64, precision, False, pretrained.fingerprint())
    predicted = [head.classes[i] for i in head.logits(features).argmax(1).tolist()]
    accuracy = sum(p == y for p, y in zip(predicted, val.labels)) / len(val)
    assert accuracy == pytest.approx(result.summary["best_val_accuracy"], abs=1e-6)

    code, output = run_cli("fit", train, "--test", test, "--backbone", out, "--strategy", "linear-probe",
                           "--epochs", "2", "--out", tmp_path / "run", "--quiet")
    assert code == 0, output
    assert (tmp_path / "run" / "metrics.json").is_file()


def test_contrastive_continues_a_pretrained_backbone_and_drops_its_stale_source_head(tmp_path):
    start = backbones.load(BackboneSpec(name="efficientnet-lite0", image_size=32))
    assert start.source_head is not None  # ImageNet's classifier, which reads the features before pretraining
    out = tmp_path / "lite0"
    headstart.pretrain("builtin:digits", method="contrastive", backbone="efficientnet-lite0", image_size=32,
                       epochs=1, batch_size=8, train_size=8, out=out, show_progress=False)
    pretrained = backbones.load(BackboneSpec(name=str(out)))
    assert pretrained.source_head is None
    assert changed(start.state_dict(), pretrained.state_dict())


def test_config_yaml_reruns_to_the_same_weights(tmp_path, digit_folders):
    first = tmp_path / "first"
    headstart.pretrain(str(digit_folders[0]), method="contrastive", backbone=ARCH, image_size=32, epochs=1,
                       batch_size=8, train_size=16, seed=3, out=first, show_progress=False)
    code, output = run_cli("pretrain", "--config", first / "config.yaml", "--out", tmp_path / "again", "--quiet")
    assert code == 0, output
    a, b = (backbones.load(BackboneSpec(name=str(p))).state_dict() for p in (first, tmp_path / "again"))
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert yaml.safe_load((tmp_path / "again" / "config.yaml").read_text())["pretrain"]["seed"] == 3


@pytest.fixture
def bad_inputs(tmp_path, digit_folders):
    empty_folder = tmp_path / "no-images"
    empty_folder.mkdir()
    (empty_folder / "notes.txt").write_text("not an image")
    empty_corpus = tmp_path / "corpus.csv"
    empty_corpus.write_text("text\n")
    return {"train": digit_folders[0], "empty_folder": empty_folder, "empty_corpus": empty_corpus}


@pytest.mark.parametrize("case, args, expected", [
    ("empty image folder", ["{empty_folder}", "--method", "contrastive", "--backbone", ARCH], "holds no images"),
    ("empty corpus", ["{empty_corpus}", "--method", "supervised", "--backbone", "minilm-l6"], "has no rows"),
    ("text backbone", ["{train}", "--method", "contrastive", "--backbone", "minilm-l6"], "pick an image backbone"),
    ("temperature 0", ["{train}", "--method", "contrastive", "--backbone", ARCH, "--temperature", "0"],
     "--temperature 0.0"),
    ("mask-prob 1", ["{train}", "--method", "mlm", "--backbone", "minilm-l6", "--mask-prob", "1"], "--mask-prob 1.0"),
    ("missing method", ["{train}", "--backbone", ARCH], "pretrain needs DATA, --method and --backbone"),
    ("unknown method", ["{train}", "--method", "simclr", "--backbone", ARCH], "unknown pretraining method 'simclr'"),
    ("strategy for contrastive", ["{train}", "--method", "contrastive", "--backbone", ARCH, "--strategy", "full"],
     "only --method supervised"),
])
def test_bad_input_is_one_line_and_writes_nothing(tmp_path, bad_inputs, case, args, expected):
    out = tmp_path / "out"
    args = [a.format(**bad_inputs) for a in args]
    line = one_error(*run_cli("pretrain", *args, "--image-size", "32", "--out", out, "--quiet"))
    assert expected in line, line
    assert not out.exists()
    assert not list(tmp_path.glob(".out.*"))  # no staging folder left behind


def test_a_non_empty_out_is_refused_before_any_work(tmp_path, digit_folders):
    out = tmp_path / "taken"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    line = one_error(*run_cli("pretrain", digit_folders[0], "--method", "contrastive", "--backbone", ARCH,
                              "--out", out, "--quiet"))
    assert "--overwrite" in line
    assert [p.name for p in out.iterdir()] == ["keep.txt"] and (out / "keep.txt").read_text() == "mine"
