"""advise on real digits: similar and different sources, pretrained against random features, advice.json, bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest
import scipy.sparse
from PIL import Image

import headstart
from headstart.data import load_examples
from headstart.select._measure import probe_accuracy, probe_r2
from headstart.select._rule import CLASSICAL_AHEAD, SIMILAR_AT, SMALL_BELOW, recommend
from test_bad_input import one_error, run_cli

IMAGE = dict(backbone="efficientnet-lite0", image_size=32, show_progress=False)
KEYS = {"labels_per_class", "similarity", "quadrant", "strategy", "reason", "measurements", "thresholds",
        "size", "similar", "similarity_method", "alternatives", "n_groups"}


@pytest.fixture(scope="module")
def inverted_digits(tmp_path_factory):
    """150 real digits with black and white swapped, as an unlabelled folder: the same shapes, another look."""
    digits = load_examples("builtin:digits")
    root = tmp_path_factory.mktemp("inverted")
    for i in range(150):
        Image.fromarray(255 - digits.inputs[i]).save(root / f"{i}.png")
    return root


@pytest.fixture(scope="module")
def scrambled_digits(digit_folders, tmp_path_factory):
    """The training digits with their pixels permuted (one fixed permutation): the classes stay separable
    for a linear model on pixels, but no longer look like anything an ImageNet model has seen."""
    train, _ = digit_folders
    order = np.random.default_rng(0).permutation(64)
    root = tmp_path_factory.mktemp("scrambled")
    for path in sorted(train.rglob("*.png")):
        pixels = np.asarray(Image.open(path).convert("L"))
        (root / path.parent.name).mkdir(exist_ok=True)
        Image.fromarray(pixels.reshape(-1)[order].reshape(8, 8)).save(root / path.parent.name / path.name)
    return root


def test_domain_distance_tells_a_similar_source_from_a_different_one(digit_folders, inverted_digits, tmp_path):
    train, _ = digit_folders
    code, output = run_cli("advise", train, "--source", "builtin:digits", "--backbone", "efficientnet-lite0",
                           "--image-size", "32", "--out", tmp_path / "similar", "--quiet")
    assert code == 0, output
    assert "small+similar" in output and "linear-probe" in output
    similar = json.loads((tmp_path / "similar" / "advice.json").read_text())
    assert KEYS <= set(similar) and (tmp_path / "similar" / "advice.png").is_file()
    different = headstart.advise(str(train), source=str(inverted_digits), **IMAGE)

    # The same digits as the source: the domain classifier is near chance. Inverted ones: it always tells.
    assert similar["measurements"]["proxy_a_distance"] < 1.0 < different.measurements["proxy_a_distance"]
    assert similar["similarity"] > SIMILAR_AT["domain-distance"] > different.similarity
    assert similar["similarity_method"] == different.similarity_method == "domain-distance"
    # 30 labels per class is small. On 8x8 digits the grey pixels separate the classes better than ImageNet features
    # by the same probe, so the classical baseline is advised in either quadrant (the quadrants' own strategies:
    # test_the_rule_of_thumb_quadrants).
    assert similar["labels_per_class"] == {"min": 30, "median": 30.0, "smallest_class": "0"}
    assert similar["size"] == different.size == "small" and 30 < SMALL_BELOW
    for advice in (similar, different.to_dict()):
        m = advice["measurements"]
        assert m["probe_classical"] >= m["probe_pretrained"] + CLASSICAL_AHEAD, m
        assert advice["strategy"] == "baseline" and advice["alternatives"] == ["linear-probe-cv", "lp-ft"]
    assert (similar["quadrant"], different.quadrant) == ("small+similar", "small+different")
    assert different.n_groups == 9 and "source data" in different.reason and "pixels" in different.reason


def test_without_source_the_probe_against_random_weights_measures_similarity(digit_folders, scrambled_digits):
    train, _ = digit_folders
    plain = headstart.advise(str(train), **IMAGE)
    scrambled = headstart.advise(str(scrambled_digits), **IMAGE)
    for advice in (plain, scrambled):
        m = advice.measurements
        assert advice.similarity_method == "probe-vs-random" and 0.0 <= advice.similarity <= 1.0
        assert m["probe_examples"] == 120 and m["probe_folds"] == 5 and m["chance"] == 0.25
        # Both probes read real structure: far above the 25% of the majority class.
        assert m["probe_pretrained"] > 0.5 and m["probe_random"] > 0.5
        # The quadrant and strategy are the rule's, applied to the numbers measured.
        rule = recommend(labels_per_class=30, similarity=advice.similarity, probe_pretrained=m["probe_pretrained"],
                         probe_random=m["probe_random"], n_groups=9, method="probe-vs-random",
                         probe_classical=m["probe_classical"])
        assert (advice.quadrant, advice.strategy, advice.alternatives) == (rule.quadrant, rule.strategy,
                                                                           rule.alternatives)
        assert advice.similar == (advice.similarity >= SIMILAR_AT["probe-vs-random"])
    # Scrambling the pixels takes away what ImageNet features know about strokes: their probe drops.
    assert scrambled.measurements["probe_pretrained"] < plain.measurements["probe_pretrained"]


def test_the_rule_of_thumb_quadrants():
    common = dict(probe_pretrained=0.9, probe_random=0.6, n_groups=9, method="probe-vs-random")
    assert recommend(labels_per_class=20, similarity=0.8, **common).strategy == "linear-probe-cv"
    assert recommend(labels_per_class=20, similarity=0.3, **common).strategy == "freeze:2"
    assert recommend(labels_per_class=500, similarity=0.8, **common).strategy == "full"
    assert recommend(labels_per_class=500, similarity=0.3, **common).strategy == "full"
    no_better = dict(common, probe_pretrained=0.6, probe_random=0.7)
    assert recommend(labels_per_class=500, similarity=0.3, **no_better).strategy == "scratch"
    assert recommend(labels_per_class=20, similarity=0.3, n_groups=7, probe_pretrained=0.9, probe_random=0.6,
                     method="domain-distance").strategy == "freeze:1"
    # Small data whose classical features beat the pretrained ones by the same probe (by CLASSICAL_AHEAD or more):
    # the baseline, whatever the similarity; not for large data, not by less, and not for few-shot texts (setfit).
    ahead = dict(common, probe_pretrained=0.7, probe_classical=0.7 + CLASSICAL_AHEAD)
    for similarity in (0.3, 0.8):
        assert recommend(labels_per_class=20, similarity=similarity, **ahead).strategy == "baseline"
    assert recommend(labels_per_class=500, similarity=0.8, **ahead).strategy == "full"
    assert recommend(labels_per_class=20, similarity=0.3, **dict(ahead, probe_classical=0.74)).strategy == "freeze:2"
    assert recommend(labels_per_class=20, similarity=0.3, text_pairs=True, **ahead).strategy == "setfit"


def test_bad_input_through_the_cli(digit_folders, review_csvs, tmp_path):
    train, _ = digit_folders
    reviews, _ = review_csvs
    line = one_error(*run_cli("advise", train, "--source", reviews, "--backbone", "efficientnet-lite0",
                              "--image-size", "32", "--quiet"))
    assert "--source" in line and "texts" in line and "image" in line
    line = one_error(*run_cli("advise", reviews, "--backbone", "efficientnet-lite0", "--quiet"))
    assert str(reviews) in line and "texts" in line and "pick a text backbone" in line
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "keep.txt").write_text("mine")
    line = one_error(*run_cli("advise", train, "--backbone", "efficientnet-lite0", "--out", tmp_path / "taken"))
    assert "--overwrite" in line and (tmp_path / "taken" / "keep.txt").read_text() == "mine"


def test_the_probe_reads_sparse_tf_idf_as_it_is():
    # 200 "texts" over 100,000 terms (the e-mails' TF-IDF has as many), each class drawing words from its own fifty.
    rng = np.random.default_rng(0)
    labels = np.repeat(["a", "b"], 100)
    rows = np.repeat(np.arange(200), 5)
    columns = rng.integers(0, 50, 1000) + np.where(labels[rows] == "a", 0, 50_000)
    features = scipy.sparse.csr_matrix((np.ones(1000), (rows, columns)), shape=(200, 100_000))
    accuracy, folds = probe_accuracy(features, labels, seed=0)
    assert folds == 5 and accuracy > 0.9
    assert -1 <= probe_r2(features, (labels == "a").astype(float), seed=0)[0] <= 1
