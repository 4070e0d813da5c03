"""The scikit-learn estimators behave as scikit-learn's own: its estimator checks (those that apply to raw inputs),
cross_val_score, GridSearchCV, Pipeline, clone, and the estimator contract on real texts and images."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from PIL import Image
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.metrics import accuracy_score
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer
from sklearn.utils.estimator_checks import parametrize_with_checks

from headstart.data import load_examples
from headstart.sklearn import TransferClassifier, TransferRegressor

FAST = {"epochs": 2, "max_length": 32}

# scikit-learn's checks feed 2-D numeric (tabular) X; headstart's estimators take texts, image paths or images and
# refuse a table of numbers in one line. Every check that fits or predicts on such X is listed with its reason and
# must fail (strict); every other check must pass. What the tabular ones would test is tested on texts below.
TABULAR = "fits or predicts on 2-D numeric X, which headstart refuses (it takes texts, image paths or images)"
COVERED = TABULAR + "; the same property is tested on texts in this file"
_SHARED = {
    "check_dict_unchanged": COVERED,
    "check_dont_overwrite_parameters": COVERED,
    "check_estimators_fit_returns_self": COVERED,
    "check_estimators_overwrite_params": COVERED,
    "check_estimators_pickle": COVERED,
    "check_fit_idempotent": COVERED,
    "check_fit_check_is_fitted": COVERED,
    "check_methods_sample_order_invariance": COVERED,
    "check_methods_subset_invariance": COVERED,
    "check_pipeline_consistency": COVERED,
    "check_fit_score_takes_y": COVERED,
    "check_dtype_object": TABULAR,
    "check_estimators_dtypes": TABULAR,
    "check_estimators_empty_data_messages": TABULAR + " (an empty X is refused: tested below)",
    "check_estimators_nan_inf": TABULAR + " (NaN pixels are refused: tested below)",
    "check_f_contiguous_array_estimator": TABULAR,
    "check_fit2d_1feature": TABULAR,
    "check_fit2d_1sample": TABULAR,
    "check_fit2d_predict1d": TABULAR,
    "check_n_features_in": "n_features_in_ counts columns of a table; raw inputs have none",
    "check_n_features_in_after_fitting": "n_features_in_ counts columns of a table; raw inputs have none",
    "check_positive_only_tag_during_fit": TABULAR,
    "check_readonly_memmap_input": TABULAR,
    "check_supervised_y_2d": TABULAR,
}
EXPECTED_FAILURES = {
    TransferClassifier: _SHARED | {
        "check_classifier_data_not_an_array": TABULAR,
        "check_classifiers_classes": TABULAR + " (classes_ of string labels: tested below)",
        "check_classifiers_train": COVERED,
        "check_classifiers_one_label": TABULAR + " (one class in y is refused: tested below)",
        "check_classifiers_multilabel_output_format_decision_function": TABULAR,
        "check_classifiers_multilabel_output_format_predict": TABULAR + " (multilabel output: tested below)",
        "check_classifiers_multilabel_output_format_predict_proba": TABULAR + " (multilabel output: tested below)",
        "check_classifiers_multilabel_representation_invariance": TABULAR,
    },
    TransferRegressor: _SHARED | {
        "check_regressor_data_not_an_array": TABULAR,
        "check_regressors_int": TABULAR,
        "check_regressors_no_decision_function": TABULAR,
        "check_regressors_train": TABULAR,
    },
}


@parametrize_with_checks([TransferClassifier(**FAST), TransferRegressor(**FAST)],
                         expected_failed_checks=lambda estimator: EXPECTED_FAILURES[type(estimator)],
                         xfail_strict=True)
def test_scikit_learn_estimator_checks(estimator, check):
    check(estimator)


@pytest.fixture(scope="module")
def reviews():
    examples = load_examples("builtin:rotten-tomatoes")
    positive, negative = ([x for x, label in zip(examples.inputs, examples.labels) if label == wanted][:30]
                          for wanted in sorted(set(examples.labels)))
    texts = [t for pair in zip(positive, negative) for t in pair]
    return texts, np.array(["neg", "pos"] * 30, dtype=object)


@pytest.fixture(scope="module")
def fitted(reviews):
    return TransferClassifier(**FAST).fit(*reviews)


def test_the_classifier_keeps_the_estimator_contract_on_texts(reviews, fitted):
    X, y = reviews
    estimator = TransferClassifier(**FAST)
    params = estimator.get_params()
    assert estimator.fit(X, y) is estimator  # fit returns self
    assert estimator.get_params() == params  # fit leaves the parameters as given
    added = set(vars(estimator)) - set(params)
    assert added and all(name.endswith("_") for name in added), added  # fitted state ends in _
    assert list(estimator.classes_) == ["neg", "pos"]  # the labels as given, not headstart's names for them
    proba = estimator.predict_proba(X)
    predicted = estimator.predict(X)
    assert proba.shape == (60, 2) and np.allclose(proba.sum(axis=1), 1, atol=1e-5)
    assert list(predicted) == list(estimator.classes_[proba.argmax(axis=1)])  # columns in classes_'s order
    assert estimator.score(X, y) == accuracy_score(y, predicted) > 0.6
    # the same seed, the same model; predictions do not depend on the inputs' order, nor, beyond bf16's rounding,
    # on which other inputs are asked about (a text is padded to the longest of its batch of similar lengths)
    assert np.array_equal(fitted.predict_proba(X), proba)
    assert np.allclose(estimator.predict_proba(X[::-1]), proba[::-1], atol=1e-6)
    assert np.allclose(estimator.predict_proba(X[:7]), proba[:7], atol=2e-3)
    again = pickle.loads(pickle.dumps(estimator))
    assert np.array_equal(again.predict_proba(X), proba)


def test_params_clone_and_set_params_round_trip(fitted):
    copy = clone(fitted)
    assert copy.get_params() == fitted.get_params() and not hasattr(copy, "model_")
    assert copy.set_params(strategy="full", lr=1e-3).get_params()["strategy"] == "full"
    assert clone(copy).get_params()["lr"] == 1e-3
    with pytest.raises(NotFittedError):
        copy.predict(["a text"])


def test_cross_val_score_grid_search_and_a_pipeline(reviews):
    X, y = reviews
    scores = cross_val_score(TransferClassifier(**FAST), X, y, cv=2)
    assert scores.shape == (2,) and all(0 <= s <= 1 for s in scores)
    grid = GridSearchCV(TransferClassifier(**FAST), {"strategy": ["linear-probe", "full"], "lr": [1e-3, 3e-3]}, cv=2)
    grid.fit(X, y)
    assert set(grid.best_params_) == {"strategy", "lr"} and len(grid.cv_results_["params"]) == 4
    assert grid.best_estimator_.strategy_ == grid.best_params_["strategy"]
    pipeline = make_pipeline(FunctionTransformer(lambda texts: [t.lower() for t in texts]),
                             TransferClassifier(**FAST))
    assert pipeline.fit(X, y).score(X, y) > 0.6


def test_images_as_arrays_and_as_paths_give_the_same_predictions(tmp_path):
    digits = load_examples("builtin:digits")
    stack, labels = np.stack(digits.inputs[:40]), np.array(digits.labels[:40])
    estimator = TransferClassifier(backbone="efficientnet-lite0", image_size=32, epochs=2).fit(stack, labels)
    paths = []
    for i, image in enumerate(stack[:6]):
        Image.fromarray(image).save(tmp_path / f"{i}.png")
        paths.append(str(tmp_path / f"{i}.png"))
    from_arrays = estimator.predict_proba(stack[:6])
    assert np.allclose(estimator.predict_proba(paths), from_arrays, atol=1e-6)
    floats = [image / 255.0 for image in stack[:6]]  # the digits are HxW gray uint8; as floats in [0, 1]
    assert np.allclose(estimator.predict_proba(floats), from_arrays, atol=1e-6)
    rgb = [np.repeat(image[:, :, None], 3, axis=2) for image in stack[:6]]  # HxWx3
    assert np.allclose(estimator.predict_proba(rgb), from_arrays, atol=1e-6)
    assert set(estimator.predict(paths)) <= set(estimator.classes_)


def test_several_labels_and_numbers(reviews):
    X, y = reviews
    tags = np.stack([y == "pos", y == "neg", np.arange(60) % 3 == 0], axis=1).astype(int)
    multilabel = TransferClassifier(**FAST).fit(X, tags)
    predicted = multilabel.predict(X)
    assert predicted.shape == (60, 3) and set(np.unique(predicted)) <= {0, 1}
    assert multilabel.predict_proba(X).shape == (60, 3) and 0 <= multilabel.score(X, tags) <= 1
    lengths = np.array([len(t) for t in X], dtype=float)
    regressor = TransferRegressor(**FAST).fit(X, lengths)
    assert regressor.predict(X).shape == (60,) and np.isfinite(regressor.predict(X)).all()
    assert isinstance(regressor.score(X, lengths), float)


@pytest.mark.parametrize("X, y, message", [
    (np.zeros((4, 3)), [0, 1, 0, 1], "X[0] is a 1-D float64 array of shape (3,); X must be texts"),
    ([], [], "X must be a non-empty list"),
    ("one text", [0], "X must be a non-empty list of texts, image paths or images, got a str"),
    (["a", "b", "c"], [0, 1], "X has 3 examples but y has 2"),
    ([np.full((8, 8), 2.0)] * 4, [0, 1, 0, 1], "X[0]: float pixels must lie in [0, 1]"),
    ([np.full((8, 8), np.nan)] * 4, [0, 1, 0, 1], "X[0]: float pixels must lie in [0, 1]"),
    (["a", np.zeros((8, 8, 3))], [0, 1], "X[1] is a 3-D float64 array"),
    (["a", "b"], [0, 0], "y holds one class ('0')"),
    (["a", "b", "c"], ["x", "y", None], "y[2] is None; give one label per example"),
    (["a", "b", "c"], ["x", "y", float("nan")], "y[2] is nan; give one label per example"),
])
def test_bad_input_is_one_value_error(X, y, message):
    with pytest.raises(ValueError) as caught:
        TransferClassifier(**FAST).fit(X, y)
    assert message in str(caught.value) and "\n" not in str(caught.value)


@pytest.mark.parametrize("y, message", [
    ([1.0, 2.0, float("inf")], "y[2] is inf; y must be one finite number per example"),
    (["x", "y", "z"], "y must be one finite number per example, got shape (3,) of <U1"),
])
def test_a_regressor_names_the_target_it_cannot_take(y, message):
    with pytest.raises(ValueError) as caught:
        TransferRegressor(**FAST).fit(["a", "b", "c"], y)
    assert message in str(caught.value)
