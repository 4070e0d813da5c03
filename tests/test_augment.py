"""--augment: training images augmented anew every epoch, the feature cache off where it would have served."""

from __future__ import annotations

import json

import torch
import yaml
from safetensors.torch import load_file

import headstart

from test_bad_input import one_error, run_cli

IMAGE = dict(backbone="efficientnet-lite0", image_size=32, batch_size=16, show_progress=False, precision="fp32")


def test_augmented_probe_runs_the_backbone_every_epoch_and_is_reproducible(digit_folders, tmp_path):
    train, test = digit_folders
    plain = headstart.fit(str(train), str(test), strategy="linear-probe", epochs=2, out=tmp_path / "plain", **IMAGE)
    runs = [headstart.fit(str(train), str(test), strategy="linear-probe", epochs=2, augment="light",
                          out=tmp_path / name, **IMAGE) for name in ("a", "b")]
    assert plain.history.cached_phases == ["probe"] and runs[0].history.cached_phases == []
    notes = yaml.safe_load((tmp_path / "a" / "config.yaml").read_text())["notes"]
    assert any("--augment light" in n and "feature cache is off" in n for n in notes)
    heads = [load_file(str(tmp_path / name / "model" / "model.safetensors"))["head.weight"]
             for name in ("plain", "a", "b")]
    assert not torch.equal(heads[0], heads[1])  # it trained on other images than the plain probe did
    assert torch.equal(heads[1], heads[2])  # the same seed draws the same augmentations
    assert json.loads((tmp_path / "a" / "metrics.json").read_text())["accuracy"] >= 0.7
    config = yaml.safe_load((tmp_path / "a" / "config.yaml").read_text())
    assert config["run"]["train"]["augment"] == "light"  # a rerun from config.yaml augments the same way


def test_augment_is_for_images_and_takes_a_known_strength(review_csvs, digit_folders, tmp_path):
    train, _ = review_csvs
    code, output = run_cli("fit", train, "--backbone", "minilm-l6", "--strategy", "linear-probe", "--augment", "light",
                           "--out", tmp_path / "run")
    assert "augments images" in one_error(code, output) and not (tmp_path / "run").exists()
    code, output = run_cli("fit", digit_folders[0], "--backbone", "efficientnet-lite0", "--augment", "heavy",
                           "--out", tmp_path / "run")
    assert "augment" in one_error(code, output)
