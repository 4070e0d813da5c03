"""rank: the four transferability scores against answers computed another way, and the command on real digits."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy.optimize import minimize

from headstart.select import hscore, leep, logme, nce
from test_bad_input import one_error, run_cli


def _evidence_by_search(features: np.ndarray, labels: np.ndarray) -> float:
    """LogME's definition, computed directly: for each one-hot class column y, max over (alpha, beta) of
    log N(y; 0, F F^T / alpha + I / beta), found by Nelder-Mead from several starts; mean over classes / N."""
    n = len(features)
    per_class = []
    for k in np.unique(labels):
        y = (labels == k).astype(float)

        def negative_log_evidence(log_ab):
            alpha, beta = np.exp(np.clip(log_ab, -30, 30))
            cov = features @ features.T / alpha + np.eye(n) / beta
            _, logdet = np.linalg.slogdet(cov)
            return 0.5 * (y @ np.linalg.solve(cov, y) + logdet + n * np.log(2 * np.pi))

        best = min((minimize(negative_log_evidence, [a, b], method="Nelder-Mead",
                             options={"xatol": 1e-10, "fatol": 1e-12, "maxiter": 4000})
                    for a in (-3, 0, 3) for b in (-3, 0, 3)), key=lambda r: r.fun)
        per_class.append(-best.fun / n)
    return float(np.mean(per_class))


@pytest.mark.parametrize("n, d", [(30, 5), (12, 20)])  # more examples than dimensions, and fewer
def test_logme_equals_the_maximised_marginal_likelihood(n, d):
    rng = np.random.default_rng(n)
    labels = np.arange(n) % 3
    features = np.eye(3)[labels] @ rng.normal(size=(3, d)) + rng.normal(size=(n, d))
    assert logme(features, labels) == pytest.approx(_evidence_by_search(features, labels), abs=1e-6)


def test_logme_scores_informative_features_above_noise_and_ignores_scale():
    rng = np.random.default_rng(0)
    labels = np.array(["cat", "dog", "eel", "fox"] * 50)
    _, index = np.unique(labels, return_inverse=True)
    informative = np.eye(4)[index] @ rng.normal(size=(4, 32)) + rng.normal(size=(200, 32))
    noise = rng.normal(size=(200, 32))
    assert logme(informative, labels) > logme(noise, labels) + 0.5
    assert logme(informative * 100.0, labels) == pytest.approx(logme(informative, labels), abs=1e-6)


def test_hscore_of_a_known_mixture():
    # Class means +-1 on the first axis, unit noise on three: cov(f) = diag(2, 1, 1), cov(E[f|y]) = diag(1, 0, 0),
    # so H = tr(cov(f)^-1 cov(E[f|y])) = 1/2. With 20,000 examples the shrinkage is negligible.
    rng = np.random.default_rng(0)
    labels = np.arange(20_000) % 2
    features = rng.normal(size=(20_000, 3))
    features[:, 0] += 2.0 * labels - 1.0
    assert hscore(features, labels) == pytest.approx(0.5, abs=0.02)
    assert hscore(rng.normal(size=(20_000, 3)), labels) == pytest.approx(0.0, abs=0.01)


def test_hscore_is_finite_with_fewer_examples_than_dimensions():
    rng = np.random.default_rng(1)
    labels = np.arange(40) % 4
    informative = np.eye(4)[labels] @ rng.normal(size=(4, 200)) * 3 + rng.normal(size=(40, 200))
    assert np.isfinite(hscore(informative, labels))
    assert hscore(informative, labels) > hscore(rng.normal(size=(40, 200)), labels)


def test_leep_of_a_hand_made_joint_distribution():
    probs = [[0.8, 0.2], [0.6, 0.4], [0.3, 0.7], [0.1, 0.9]]
    labels = ["a", "a", "b", "b"]
    # P(y, z) = [[1.4, 0.6], [0.4, 1.6]] / 4, so P(a|z0) = 7/9, P(b|z0) = 2/9, P(a|z1) = 3/11, P(b|z1) = 8/11.
    expected = np.mean(np.log([0.8 * 7 / 9 + 0.2 * 3 / 11, 0.6 * 7 / 9 + 0.4 * 3 / 11,
                               0.3 * 2 / 9 + 0.7 * 8 / 11, 0.1 * 2 / 9 + 0.9 * 8 / 11]))
    assert leep(probs, labels) == pytest.approx(expected, abs=1e-12)


def test_nce_of_a_hand_made_joint_distribution_and_leep_with_certain_sources():
    labels = ["a", "a", "b", "b"]
    assert nce([0, 0, 1, 1], labels) == pytest.approx(0.0)  # the source label determines the target
    # P(a, 0) = 1/2, P(b, 0) = 1/4, P(b, 1) = 1/4: -H(Y|Z) = 1/2 log 2/3 + 1/4 log 1/3 + 1/4 log 1
    source = [0, 0, 0, 1]
    assert nce(source, labels) == pytest.approx(0.5 * math.log(2 / 3) + 0.25 * math.log(1 / 3))
    # With one-hot source predictions, LEEP is the same quantity as NCE.
    assert leep(np.eye(2)[source], labels) == pytest.approx(nce(source, labels))


def test_rank_puts_pretrained_above_random_weights_and_writes_rank_json(tmp_path):
    out = tmp_path / "rank"
    code, output = run_cli("rank", "builtin:digits", "--backbones", "efficientnet-lite0:random,efficientnet-lite0",
                           "--train-size", "100", "--image-size", "32", "--out", out, "--quiet")
    assert code == 0, output
    rows = json.loads((out / "rank.json").read_text())
    assert [r["backbone"] for r in rows] == ["efficientnet-lite0", "efficientnet-lite0:random"]
    assert rows[0]["logme"] > rows[1]["logme"]
    assert set(rows[0]) == {"backbone", "logme", "hscore", "leep", "nce", "seconds"}
    # ImageNet's head gives 10-class digits a LEEP above chance's log(1/10) and below 0; random weights have none.
    assert math.log(0.1) < rows[0]["leep"] < 0 and -math.log(10) < rows[0]["nce"] < 0
    assert rows[1]["leep"] is None and rows[1]["nce"] is None
    assert (out / "config.yaml").is_file() and (out / "rank.png").is_file()
    assert "not accuracies" in output and "n/a" in output


@pytest.mark.parametrize("args, says", [
    (["--backbones", "efficientnet-lite0", "--metrics", "logme,logm"], "did you mean 'logme'"),
    (["--backbones", ""], "--backbones needs"),
    (["--backbones", "efficientnet-lite0,minilm-l6"], "backbone 'minilm-l6' reads texts"),
    (["--backbones", "efficientnet-lite0,efficientnet-lite0"], "more than once"),
])
def test_bad_rank_input_is_one_line(args, says):
    line = one_error(*run_cli("rank", "builtin:digits", "--train-size", "40", "--image-size", "32", "--quiet", *args))
    assert says in line


def test_rank_refuses_a_non_empty_out_and_leaves_it_alone(tmp_path):
    (tmp_path / "keep.txt").write_text("mine")
    line = one_error(*run_cli("rank", "builtin:digits", "--backbones", "efficientnet-lite0", "--out", tmp_path))
    assert "not empty" in line and (tmp_path / "keep.txt").read_text() == "mine"
