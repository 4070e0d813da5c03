"""scikit-learn estimators: headstart's fit inside cross_val_score, GridSearchCV and Pipeline.

    from headstart.sklearn import TransferClassifier
    clf = TransferClassifier(backbone="minilm-l6", strategy="linear-probe").fit(texts, labels)
    clf.predict(["a new text"]), clf.score(test_texts, test_labels)

X is a list of texts, of image file paths (every item an existing image file), or of HxWxC (or HxW) images
as arrays (a 4-D array is a stack of them). The constructor's parameters are fit's options, stored as given
and checked when `fit` runs; `fit` trains by the same recipe as `headstart fit` (api.train_task) on X, y
(validation: a stratified share of them), keeping nothing on disk but the feature cache.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy.sparse import issparse
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.utils.multiclass import type_of_target
from sklearn.utils.validation import check_is_fitted

from .api import run_spec, train_task
from .data import Examples, task_data
from .data.readers import IMAGE_SUFFIXES, UNDECODABLE, decode_image
from .errors import HeadstartError
from .model import check_modality
from .tasks import ClassificationTask, MultilabelTask, RegressionTask
from .train.progress import silenced

__all__ = ["TransferClassifier", "TransferRegressor"]

SOURCE = "X"  # how messages name the data


class _TransferEstimator(BaseEstimator):
    """The parameters and the fit/predict both estimators share; a subclass says how y becomes labels."""

    def __init__(self, backbone: str = "minilm-l6", strategy: str = "linear-probe", epochs: int | None = None,
                 lr: float | None = None, batch_size: int = 32, image_size: int | None = None, max_length: int = 128,
                 long: str = "truncate",
                 weights: str | None = None, precision: str | None = None, seed: int = 0, min_steps: int = 0,
                 budget: str | None = None, show_progress: bool = False):
        self.backbone = backbone
        self.strategy = strategy
        self.epochs = epochs
        self.lr = lr
        self.batch_size = batch_size
        self.image_size = image_size
        self.max_length = max_length
        self.long = long
        self.weights = weights
        self.precision = precision
        self.seed = seed
        self.min_steps = min_steps
        self.budget = budget
        self.show_progress = show_progress

    def _fit(self, X, y, kind: str):
        """Train on X, y by the estimator's strategy (auto: the race's winner) for a task of this kind."""
        try:
            spec = run_spec(SOURCE, backbone=self.backbone, strategy=self.strategy, epochs=self.epochs, lr=self.lr,
                            batch_size=self.batch_size, image_size=self.image_size, max_length=self.max_length,
                            long=self.long,
                            weights=self.weights, precision=self.precision, seed=self.seed,
                            min_steps=self.min_steps, budget=self.budget, task=kind)
            inputs, modality = _inputs(X)
            labels = self._labels(y, len(inputs))
            train = Examples(inputs, [str(i) for i in range(len(inputs))], modality, labels, SOURCE, kind)
            data = task_data(train, train.subset([]), self.seed)
            with silenced(not self.show_progress):
                trained = train_task(spec, data, self.show_progress)
        except HeadstartError as err:
            raise ValueError(str(err)) from None
        self.model_, self.history_ = trained.model, trained.history
        self.strategy_ = trained.plan.strategy  # what auto chose, or the strategy asked for
        self.precision_ = trained.spec.train.precision
        return self

    def _outputs(self, X) -> tuple[np.ndarray, list]:
        check_is_fitted(self, "model_")
        try:
            inputs, modality = _inputs(X)
            check_modality(self.model_.backbone, self.backbone, SOURCE, modality)
        except HeadstartError as err:
            raise ValueError(str(err)) from None
        return self.model_.predict_proba(inputs, self.batch_size, self.precision_), inputs

    def _decoded(self, X) -> list:
        outputs, inputs = self._outputs(X)
        return [d.label for d in self.model_.task.decode(outputs, inputs)]

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.string = True
        tags.non_deterministic = False  # seeded: the same X, y and seed give the same model
        return tags


class TransferClassifier(ClassifierMixin, _TransferEstimator):
    """A pretrained backbone and a new head for classification; y as labels (one per example) or, for
    several labels per example, a 0/1 indicator matrix [n_samples, n_labels] (as scikit-learn's multilabel
    classifiers take it). `classes_`: the labels in the order of predict_proba's columns."""

    def fit(self, X, y):
        """Train on X, y (labels, or a 0/1 matrix of several per example); returns self."""
        _require_y(self, y)
        if np.ndim(y) == 1:  # a missing label: sorting the labels (type_of_target) would fail on it, or make 'nan' one
            missing = next((i for i, v in enumerate(y) if v is None or (isinstance(v, float) and v != v)), None)
            if missing is not None:
                raise ValueError(f"y[{missing}] is {y[missing]!r}; give one label per example")
        target = type_of_target(y)
        self.multilabel_ = target == "multilabel-indicator"
        if target not in ("binary", "multiclass", "multilabel-indicator"):
            raise ValueError(f"y is {target} ({_shape(y)}); TransferClassifier takes one label per example or a "
                             "0/1 matrix of several; for numbers use TransferRegressor")
        return self._fit(X, y, MultilabelTask.kind if self.multilabel_ else ClassificationTask.kind)

    def _labels(self, y, n: int) -> list:
        y = _check_length(y, n)
        self.classes_ = np.arange(np.asarray(y).shape[1]) if self.multilabel_ else np.unique(np.asarray(y))
        if not self.multilabel_ and len(self.classes_) < 2:
            raise HeadstartError(f"y holds one class ('{self.classes_[0]}'); a classifier needs at least two")
        names = _names(len(self.classes_))
        if self.multilabel_:
            return [[names[j] for j in np.flatnonzero(row)] for row in np.asarray(y)]
        return [names[i] for i in np.searchsorted(self.classes_, np.asarray(y))]

    def predict_proba(self, X) -> np.ndarray:
        """Class probabilities [n_samples, n_classes] in the order of classes_ (multilabel: each label's)."""
        return self._outputs(X)[0]

    def predict(self, X) -> np.ndarray:
        decoded = self._decoded(X)
        if self.multilabel_:
            hot = np.zeros((len(decoded), len(self.classes_)), dtype=int)
            for row, names in zip(hot, decoded):
                row[[int(n) for n in names]] = 1
            return hot
        return self.classes_[[int(name) for name in decoded]]

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = True
        return tags


class TransferRegressor(RegressorMixin, _TransferEstimator):
    """A pretrained backbone and a new head that predicts a number; y: one number per example."""

    def fit(self, X, y):
        """Train on X and one number per example; returns self."""
        _require_y(self, y)
        return self._fit(X, y, RegressionTask.kind)

    def _labels(self, y, n: int) -> list:
        values = np.asarray(_check_length(y, n))
        if values.ndim != 1 or not np.issubdtype(values.dtype, np.number):
            raise HeadstartError(f"y must be one finite number per example, got {_shape(y)}"
                                 + (f" of {values.dtype}" if values.ndim == 1 else ""))
        if not np.isfinite(values).all():
            bad = int(np.flatnonzero(~np.isfinite(values))[0])
            raise HeadstartError(f"y[{bad}] is {values[bad]}; y must be one finite number per example")
        return [float(v) for v in values]

    def predict(self, X) -> np.ndarray:
        return np.asarray(self._decoded(X), dtype=float)


def _names(n: int) -> list[str]:
    """The task's class names for classes_ 0..n-1: zero-padded, so that their sorted order is classes_'s."""
    width = len(str(max(n - 1, 0)))
    return [f"{i:0{width}d}" for i in range(n)]


def _shape(y) -> str:
    return f"shape {np.shape(y)}" if np.ndim(y) else repr(y)


def _require_y(estimator, y) -> None:
    if y is None:  # scikit-learn's wording, which its checks and users' code look for
        raise ValueError(f"{type(estimator).__name__} requires y to be passed, but the target y is None")


def _check_length(y, n: int):
    if len(y) != n:
        raise HeadstartError(f"X has {n} examples but y has {len(y)}; give one label per example")
    return y


def _inputs(X) -> tuple[list, str]:
    """X as Examples' inputs (texts, or HxWx3 uint8 images) and their modality; what it cannot be, in one line."""
    if issparse(X):
        raise HeadstartError("sparse input is not supported: X must be texts, image paths or images")
    if isinstance(X, np.ndarray) and np.iscomplexobj(X):
        raise HeadstartError("Complex data not supported: images are real numbers")
    if isinstance(X, np.ndarray) and X.dtype.kind in "iuf" and X.ndim in (3, 4):
        X = list(X)  # a stack of images
    items = list(X) if not isinstance(X, (str, bytes)) else None
    if items is None or not items:
        raise HeadstartError(f"X must be a non-empty list of texts, image paths or images, got {_shown_type(X)}")
    kinds = [_item_kind(x) for x in items]
    odd = next((i for i, k in enumerate(kinds) if k is None or k != kinds[0]), None)
    if odd is not None:
        raise HeadstartError(f"X[{odd}] is {_shown_type(items[odd])}; X must be texts, image paths or images "
                             "(HxWxC or HxW arrays), all of one kind (headstart learns from raw inputs, not from "
                             "columns of numbers)")
    if kinds[0] == "array":
        return [_rgb(x, i) for i, x in enumerate(items)], "image"
    if all(_is_image_file(x) for x in items):
        return [_decoded_file(x, i) for i, x in enumerate(items)], "image"
    return items, "text"


def _item_kind(x) -> str | None:
    if isinstance(x, str):
        return "str"
    return "array" if isinstance(x, np.ndarray) and x.ndim in (2, 3) else None


def _shown_type(x) -> str:
    if isinstance(x, np.ndarray):
        return f"a {x.ndim}-D {x.dtype} array of shape {x.shape}"
    return f"a {type(x).__name__}"


def _is_image_file(x: str) -> bool:
    try:
        return Path(x).suffix.lower() in IMAGE_SUFFIXES and Path(x).is_file()
    except (OSError, ValueError):  # a text too long to be a path, a NUL byte, ...
        return False


def _decoded_file(path: str, i: int) -> np.ndarray:
    try:
        return decode_image(Path(path))
    except UNDECODABLE as err:
        raise HeadstartError(f"X[{i}]: cannot decode the image {path} ({err}); fix or drop it") from None


def _rgb(x: np.ndarray, i: int) -> np.ndarray:
    """An image array as HxWx3 uint8: 0..255 integers as they are, floats in [0, 1] scaled; gray or RGBA
    made RGB."""
    if x.ndim == 2:
        x = x[:, :, None]
    if x.shape[2] not in (1, 3, 4) or x.dtype.kind not in "iuf":
        raise HeadstartError(f"X[{i}] is {_shown_type(x)}; an image is HxW or HxWxC with C = 1, 3 or 4 numbers")
    if x.dtype.kind == "f":
        if not (np.isfinite(x).all() and x.min(initial=0) >= 0 and x.max(initial=0) <= 1):
            raise HeadstartError(f"X[{i}]: float pixels must lie in [0, 1]; give uint8 (0..255) or scale them")
        x = np.rint(x * 255)
    elif x.min(initial=0) < 0 or x.max(initial=0) > 255:
        raise HeadstartError(f"X[{i}]: integer pixels must lie in 0..255, got {x.min()}..{x.max()}")
    x = x.astype(np.uint8)
    return np.ascontiguousarray(np.repeat(x, 3, axis=2) if x.shape[2] == 1 else x[:, :, :3])
