"""Every registered backbone answers the same protocol: groups in order, features of the right size."""

from __future__ import annotations

import numpy as np
import pytest
import timm
import torch
from safetensors.torch import save_file

from headstart import backbones
from headstart.config import BackboneSpec
from headstart.data import load_examples
from headstart.errors import HeadstartError

TEXTS = ["a warm, funny film", "dull and far too long", "an instant classic"]


def _inputs(backbone):
    if backbone.modality == "text":
        return TEXTS
    digits = load_examples("builtin:digits")
    return digits.inputs[:2] + [np.zeros((20, 30, 3), np.uint8)]  # mixed sizes and channels


@pytest.mark.parametrize("name", backbones.BACKBONES.names())
def test_registered_backbones_answer_the_protocol(name):
    backbone = backbones.load(BackboneSpec(name=name, image_size=32, max_length=16))
    groups = backbone.layer_groups()
    assert len(groups) >= 3
    grouped = {id(p) for g in groups for p in g.parameters()}
    assert len(grouped) == sum(1 for g in groups for _ in g.parameters())  # no parameter in two groups
    inputs = _inputs(backbone)
    with torch.no_grad():
        features = backbone.eval()(backbone.preprocess(inputs))
    assert features.shape == (len(inputs), backbone.dim) and torch.isfinite(features).all()
    assert backbone.describe()["source"] in ("hf-text", "timm")


def test_pretrained_weights_differ_from_random_ones():
    pretrained = backbones.load(BackboneSpec(name="efficientnet-lite0"))
    random = backbones.load(BackboneSpec(name="efficientnet-lite0:random"))
    key = "model.conv_stem.weight"
    assert not torch.equal(pretrained.state_dict()[key], random.state_dict()[key])


def test_minilm_matches_its_sentence_embedding_semantics():
    backbone = backbones.load(BackboneSpec(name="minilm-l6")).eval()
    with torch.no_grad():
        a, b, c = backbone(backbone.preprocess(["a great movie", "a wonderful film", "the stock market fell"]))
    cos = torch.nn.functional.cosine_similarity
    assert cos(a, b, dim=0) > cos(a, c, dim=0) + 0.2


def test_a_local_hugging_face_folder_is_a_backbone():
    from headstart.backbones.hf_text import minilm_folder

    backbone = backbones.load(BackboneSpec(name=str(minilm_folder()), max_length=16))
    assert backbone.modality == "text" and backbone.dim == 384 and len(backbone.layer_groups()) == 7


def test_timm_architecture_with_a_weights_file(tmp_path):
    source = timm.create_model("resnet18", pretrained=False)
    save_file(source.state_dict(), tmp_path / "r18.safetensors")
    torch.save(source.state_dict(), tmp_path / "r18.pth")
    for path in ("r18.safetensors", "r18.pth"):
        backbone = backbones.load(BackboneSpec(name="timm:resnet18", weights=str(tmp_path / path), image_size=32))
        assert torch.equal(backbone.model.conv1.weight, source.conv1.weight)
        assert [g.name for g in backbone.layer_groups()] == ["stem", "layer1", "layer2", "layer3", "layer4"]


@pytest.mark.parametrize("name", ["efficientnet-lite0", "minilm-l6"])
def test_a_saved_backbone_folder_reloads_to_the_same_features(name, tmp_path):
    backbone = backbones.load(BackboneSpec(name=name, image_size=32, max_length=16)).eval()
    backbone.source_head = backbones.SourceHead(["a", "b"], torch.randn(2, backbone.dim), torch.zeros(2))
    backbones.save_backbone(backbone, tmp_path / "bb", provenance={"method": "test"})
    again = backbones.load(BackboneSpec(name=str(tmp_path / "bb")))
    inputs = _inputs(backbone)
    with torch.no_grad():
        assert torch.equal(backbone(backbone.preprocess(inputs)), again(again.preprocess(inputs)))
    assert again.source_head.classes == ["a", "b"] and torch.equal(again.source_head.weight, backbone.source_head.weight)
    assert again.fingerprint() == backbone.fingerprint()


def test_a_damaged_backbone_folder_says_so(tmp_path):
    backbone = backbones.load(BackboneSpec(name="efficientnet-lite0", image_size=32))
    backbones.save_backbone(backbone, tmp_path / "bb")
    (tmp_path / "bb" / "backbone.safetensors").write_bytes(b"not safetensors")
    with pytest.raises(HeadstartError, match="backbone.safetensors"):
        backbones.load(BackboneSpec(name=str(tmp_path / "bb")))


def test_image_augmentation_keeps_size_and_changes_pixels():
    import torch as _torch

    from headstart.data.augment import augment_images

    digits = load_examples("builtin:digits").inputs[:4]
    for strength in ("light", "strong"):
        a = augment_images(digits, strength, _torch.Generator().manual_seed(0))
        b = augment_images(digits, strength, _torch.Generator().manual_seed(0))
        assert all(x.shape == (8, 8, 3) and x.dtype == np.uint8 for x in a)
        assert all(np.array_equal(x, y) for x, y in zip(a, b))  # seeded: the same views again
        assert any(not np.array_equal(x, np.repeat(d[..., None], 3, -1)) for x, d in zip(a, digits))
