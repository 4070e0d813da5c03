"""linear-probe-cv: the head on frozen features is the convex problem scikit-learn solves, its strength chosen
by cross-validation on every labelled example; the run saves a plain linear head that reloads bit-identically."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import torch
import yaml
from sklearn.linear_model import LogisticRegression, Ridge

import headstart
from headstart.tasks import TASKS
from headstart.train import convex
from test_bad_input import run_cli


def _standardised(x):
    return ((x - x.mean(0)) / x.std(0, ddof=1)).astype(np.float32)


@pytest.mark.parametrize("C", [0.01, 1.0, 100.0])
def test_the_solver_reaches_scikit_learns_logistic_regression(C):
    rng = np.random.default_rng(0)
    x = _standardised(rng.normal(size=(300, 20)) * rng.uniform(0.1, 3, 20))
    labels = [str(v) for v in (x @ rng.normal(size=(20, 3)) + rng.normal(size=(300, 3))).argmax(1)]
    task = TASKS.get("classification").from_labels(labels)
    y = task.encode(labels)
    weight, bias = convex._solve(task, torch.from_numpy(x), y, C, None, 3)
    reference = LogisticRegression(C=C, max_iter=5000, tol=1e-8).fit(x, y)
    assert np.abs(weight.numpy() - reference.coef_).max() <= 2e-3 * max(1.0, np.abs(reference.coef_).max())
    assert ((x @ weight.numpy().T + bias.numpy()).argmax(1) == reference.predict(x)).all()


def test_a_regression_head_is_ridge_and_its_strength_is_chosen_out_of_fold():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(200, 8)).astype(np.float32) * 3 + 1
    task = TASKS.get("regression").from_labels(list(x @ rng.normal(size=8) + rng.normal(size=200)))
    y = task.encode(list(x @ rng.normal(size=8)))  # standardised targets, as the head learns them
    z, C = _standardised(x), 0.5
    weight, bias = convex._solve(task, torch.from_numpy(z), y, C, None, 1)
    # mean squared error + |W|^2 / (2 C n)  is Ridge's  sum of squares + alpha |W|^2  with alpha = 1 / (2 C)
    reference = Ridge(alpha=1 / (2 * C)).fit(z, y)
    assert np.allclose(weight.numpy()[0], reference.coef_, atol=1e-3) and abs(bias.item() - reference.intercept_) < 1e-3
    head = torch.nn.Linear(8, 1)
    fitted = convex.fit_head(head, task, torch.from_numpy(x[:150]), y[:150], torch.from_numpy(x[150:]), y[150:])
    assert fitted.C in convex.C_GRID and fitted.folds == 5 and fitted.val_logits.shape == (50, 1)
    assert fitted.cv_score > 0.9  # a linear target: R² out of fold
    # the head works on the raw features: the standardisation is folded into its weights
    assert task.validate(head(torch.from_numpy(x)).detach(), y).value > 0.95


def test_linear_probe_cv_from_the_cli_notes_its_choice_and_reloads_bit_identically(digit_folders, tmp_path):
    train, test = digit_folders
    common = ("--backbone", "efficientnet-lite0", "--image-size", "32", "--strategy", "linear-probe-cv", "--quiet")
    code, output = run_cli("fit", train, "--test", test, *common, "--dry-run")
    assert code == 0 and "fitted to convergence by L-BFGS" in output and "5-fold cross-validation" in output
    code, output = run_cli("fit", train, "--test", test, *common, "--out", tmp_path / "run")
    assert code == 0, output
    notes = yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())["notes"]
    assert any("chosen by 5-fold cross-validation" in note and "then refit on all of them" in note for note in notes)
    saved = list(csv.DictReader(open(tmp_path / "run" / "predictions.csv", encoding="utf-8")))
    headstart.predict(tmp_path / "run", str(test), output=tmp_path / "again.csv", show_progress=False)
    assert list(csv.DictReader(open(tmp_path / "again.csv", encoding="utf-8"))) == saved
