"""Classical features behind the Backbone protocol: TF-IDF of words and word pairs for texts, standardised 16x16
grey pixels for images. Nothing is pretrained and nothing trains: they are fitted on the training inputs (the
vocabulary and its idf, the pixels' means and spreads), and `--strategy baseline` puts the task's classical
estimator on them as the head. Saved like any backbone (the vocabulary as JSON beside the weights; idf, means
and spreads in safetensors), so a baseline run is predicted, evaluated and reloaded like any other run.

    features = classical_features(train_examples)   # TfidfFeatures or PixelFeatures, fitted
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.feature_extraction.text import CountVectorizer, TfidfVectorizer

from ..errors import HeadstartError
from ..runs import atomic_write_text
from ._base import Backbone, LayerGroup

__all__ = ["TfidfFeatures", "PixelFeatures", "classical_features", "rebuild_classical", "CLASSICAL_SOURCES"]

NGRAMS = (1, 2)  # words and word pairs
PIXELS = 16      # images are averaged down to PIXELS x PIXELS grey values
VOCABULARY_FILE = "tfidf-vocabulary.json"


class _Classical(Backbone):
    """What both share: no layer groups (nothing to freeze or train), nothing to randomise."""

    sparse = False  # whether the features are mostly zeros (the baseline's estimator then reads them sparse)

    def layer_groups(self) -> list[LayerGroup]:
        return []

    def randomize(self) -> None:
        """Classical features have no weights to re-initialise: they are fitted on the data."""


class TfidfFeatures(_Classical):
    """sklearn's TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True): 1 + log(count) of each known term, times
    its idf, each text scaled to unit length. Counting is sklearn's, on the saved vocabulary; the rest is torch."""

    modality = "text"
    sparse = True

    def __init__(self, terms: list[str]):
        super().__init__()
        self.terms, self.dim = list(terms), len(terms)
        self.register_buffer("idf", torch.ones(self.dim))
        self._counter = CountVectorizer(vocabulary=self.terms, ngram_range=NGRAMS, dtype=np.float32)

    @classmethod
    def fit(cls, texts: list[str]) -> "TfidfFeatures":
        try:
            vectorizer = TfidfVectorizer(ngram_range=NGRAMS, sublinear_tf=True).fit(texts)
        except ValueError:  # sklearn's "empty vocabulary"
            raise HeadstartError("strategy baseline: the training texts hold no words (TF-IDF found an empty "
                                 "vocabulary); give texts with words") from None
        features = cls(vectorizer.get_feature_names_out().tolist())
        features.idf.copy_(torch.from_numpy(vectorizer.idf_.astype(np.float32)))
        return features

    def preprocess(self, inputs: list) -> dict[str, torch.Tensor]:
        return {"counts": torch.from_numpy(self._counter.transform(inputs).toarray())}

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        counts = batch["counts"].float()
        tf = torch.where(counts > 0, 1 + torch.log(counts.clamp_min(1)), torch.zeros_like(counts))
        return F.normalize(tf * self.idf, dim=1)

    def describe(self) -> dict:
        digest = hashlib.sha256("\n".join(self.terms).encode()).hexdigest()
        return {"source": "tfidf", "ngram_range": list(NGRAMS), "sublinear_tf": True, "terms": self.dim,
                "vocabulary": VOCABULARY_FILE, "vocabulary_sha256": digest}

    def save_assets(self, folder: Path) -> None:
        atomic_write_text(Path(folder) / VOCABULARY_FILE, json.dumps(self.terms, ensure_ascii=False))

    @classmethod
    def from_folder(cls, folder: Path, description: dict) -> "TfidfFeatures":
        path = Path(folder) / description["vocabulary"]
        try:
            terms = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as err:
            raise HeadstartError(f"cannot read {path} ({err}); the run is damaged, rerun the fit") from None
        if not isinstance(terms, list) or len(terms) != description["terms"]:
            raise HeadstartError(f"{path} does not hold the run's {description['terms']} terms; rerun the fit")
        return cls([str(t) for t in terms])


class PixelFeatures(_Classical):
    """Each image averaged down to PIXELS x PIXELS grey values in 0..1, standardised by the training images'
    per-pixel mean and spread (sklearn's StandardScaler)."""

    modality = "image"
    dim = PIXELS * PIXELS

    def __init__(self):
        super().__init__()
        self.register_buffer("mean", torch.zeros(self.dim))
        self.register_buffer("scale", torch.ones(self.dim))

    @classmethod
    def fit(cls, images: list) -> "PixelFeatures":
        features, pixels = cls(), cls.pixels(images).double()
        spread = pixels.std(0, unbiased=False)
        features.mean.copy_(pixels.mean(0).float())
        features.scale.copy_(torch.where(spread > 0, spread, torch.ones_like(spread)).float())  # a constant pixel: 1
        return features

    @staticmethod
    def pixels(images: list) -> torch.Tensor:
        rows = []
        for image in images:
            x = torch.from_numpy(np.asarray(image, dtype=np.float32))
            x = x.mean(-1) if x.ndim == 3 else x
            rows.append(F.interpolate(x[None, None], size=(PIXELS, PIXELS), mode="area").flatten())
        return torch.stack(rows) / 255.0

    def preprocess(self, inputs: list) -> dict[str, torch.Tensor]:
        return {"pixels": self.pixels(inputs)}

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return (batch["pixels"].float() - self.mean) / self.scale

    def describe(self) -> dict:
        return {"source": "pixels", "side": PIXELS}


CLASSICAL_SOURCES = ("tfidf", "pixels")


def classical_features(examples) -> _Classical:
    """The classical features of the examples' modality, fitted on their inputs."""
    kind = TfidfFeatures if examples.modality == "text" else PixelFeatures
    return kind.fit(examples.inputs)


def rebuild_classical(description: dict, folder: Path) -> _Classical:
    """A saved classical backbone's architecture (its buffers are loaded with the run's weights)."""
    if description["source"] == "tfidf":
        return TfidfFeatures.from_folder(folder, description)
    return PixelFeatures()
