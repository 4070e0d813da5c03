"""tokens: one tag per word (parts of speech, named entities in IOB2), read from a text backbone's first subword.

Everything downstream sees one row per word: the backbone gives [words, dim] features for a batch of word lists
(data/_types.rows_of counts them), so the head, the loss, the feature cache and validation work row by row, and
only `decode` puts the rows back into sentences.
"""

from __future__ import annotations

import warnings
from collections import Counter
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.base import BaseEstimator
from sklearn.metrics import f1_score, precision_recall_fscore_support

from ..errors import HeadstartError
from ..evaluate.plots import plot_per_label_f1
from ._base import Decoded, Score, Task, rows_of

__all__ = ["TokensTask", "token_metrics", "is_iob", "MostFrequentTag"]

IGNORE = -100  # a row the loss skips: a tag the training data never showed


def is_iob(tags) -> bool:
    """Whether a tag set is IOB2 (O, B-TYPE, I-TYPE): then entity-level metrics apply."""
    return any(t[:2] in ("B-", "I-") for t in tags)


class TokensTask(Task):
    """A softmax over the tags for every word, cross-entropy over words; the validation score is token accuracy.
    With IOB2 tags the test score is entity-level F1 (exact spans, seqeval), otherwise token accuracy."""

    kind = "tokens"
    column = "tags"
    input_column, reads_words = "tokens", True  # a list of words per row, not a text
    predictions_file = "predictions.jsonl"
    score_name = "token accuracy"

    def __init__(self, tags: list[str]):
        self.tags = list(tags)
        self._index = {t: i for i, t in enumerate(self.tags)}
        self.iob = is_iob(self.tags)
        self.score_key, self.second_key, self.second_name = (
            ("entity_f1", "token_accuracy", "token accuracy") if self.iob else ("token_accuracy", "macro_f1", "macro-F1"))

    @classmethod
    def read_labels(cls, values: list, lines: list[int], where: str) -> list[list[str]]:
        """A list of tags per row (JSON in JSONL, one column in CoNLL); a tag set that uses B-/I- must be IOB2."""
        rows = []
        for value, line in zip(values, lines):
            if not isinstance(value, list) or not value or any(isinstance(t, (list, dict)) or t in (None, "")
                                                               for t in value):
                raise HeadstartError(f"{where}, line {line}: 'tags' must be a non-empty list of tags, one per word")
            rows.append([str(t).strip() for t in value])
        tags = {t for row in rows for t in row}
        if is_iob(tags):
            stray = sorted(t for t in tags if t != "O" and (t[:2] not in ("B-", "I-") or len(t) < 3))
            if stray:
                line = next(ln for row, ln in zip(rows, lines) if stray[0] in row)
                raise HeadstartError(f"{where}, line {line}: tag {stray[0]!r} is not IOB2 (O, B-TYPE or I-TYPE), "
                                     "but other tags are, and entity metrics need every tag in IOB2; fix the tag")
        return rows

    @classmethod
    def check_rows(cls, inputs: list, labels: list, lines: list[int], where: str) -> None:
        for words, tags, line in zip(inputs, labels, lines):
            if len(words) != len(tags):
                raise HeadstartError(f"{where}, line {line}: {len(words)} tokens but {len(tags)} tags; give one "
                                     "tag per token")

    @classmethod
    def from_labels(cls, labels: list[list[str]]) -> "TokensTask":
        return cls(sorted({t for row in labels for t in row}))

    def out_dim(self) -> int:
        return len(self.tags)

    def encode(self, labels: list[list[str]]) -> np.ndarray:
        """One row per word, sentence after sentence (as the backbone gives features)."""
        return np.array([self._index.get(t, IGNORE) for row in labels for t in row], dtype=np.int64)

    def evidence(self, labels: list[list[str]]) -> np.ndarray:
        codes = self.encode(labels)
        hot = np.zeros((len(codes), len(self.tags)))  # a tag never seen in training: a row of zeros
        hot[np.flatnonzero(codes != IGNORE), codes[codes != IGNORE]] = 1.0
        return hot

    def check_known(self, labels: list[list[str]], source: str, known_to: str = "this model") -> None:
        """Tags `known_to` never saw are not refused (a rare tag is often missing from a small training set): they
        count as errors, and a warning names them."""
        unknown = sorted({t for row in labels for t in row} - set(self.tags))
        if unknown:
            warnings.warn(f"{source}: tags {unknown[:5]} are not tags of {known_to}; the words that carry them count "
                          "as errors", stacklevel=2)

    def label_counts(self, labels: list[list[str]]) -> dict[str, int]:
        return dict(sorted(Counter(t for row in labels for t in row).items()))

    def probe_classes(self, labels: list[list[str]]) -> list[str]:
        return [t for row in labels for t in row]  # one row of features per word

    def loss(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(logits.float(), targets, ignore_index=IGNORE)

    def validate(self, logits: torch.Tensor, targets: np.ndarray) -> Score:
        logits, y = logits.float(), torch.from_numpy(targets)
        correct = (logits.argmax(-1) == y).numpy()
        return Score(float(correct.mean()), float(F.cross_entropy(logits, y, ignore_index=IGNORE)), correct)

    def outputs(self, logits: torch.Tensor) -> torch.Tensor:
        return torch.softmax(logits.float(), dim=-1)

    def decode(self, outputs: np.ndarray, inputs: list) -> list[Decoded]:
        ends = np.cumsum([rows_of(x) for x in inputs])
        return [Decoded([self.tags[int(i)] for i in rows.argmax(-1)], [float(p) for p in rows.max(-1)])
                for rows in np.split(outputs, ends[:-1])]

    def metrics(self, truth: list[list[str]], predicted: list[list[str]]) -> dict:
        return {"task": self.kind, **token_metrics(truth, predicted, self.iob)}

    @classmethod
    def headline(cls, metrics: dict) -> dict[str, str]:
        shown = {"token accuracy": f"{metrics['token_accuracy']:.4f}", "macro-F1": f"{metrics['macro_f1']:.4f}"}
        if "entity_f1" in metrics:
            shown = {"entity F1": f"{metrics['entity_f1']:.4f}", **shown}
        return shown

    def plot_test(self, truth, predicted, metrics: dict, folder: Path, title: str) -> None:
        per = metrics.get("per_type") or metrics["per_tag"]
        common = dict(sorted(per.items(), key=lambda kv: -kv[1]["support"])[:30])  # Brown has ~80 tags
        plot_per_label_f1(common, folder / "per_tag_f1.png", title)

    def baseline(self, labels: list[list[str]], seed: int):
        """Each word's most frequent training tag (the classic floor of tagging); unseen words: the commonest tag."""
        return MostFrequentTag(), labels, None

    def prediction_columns(self) -> list[str]:
        return ["tags", "scores"]

    def prediction_cells(self, decoded) -> list[str]:
        return [" ".join(decoded.label), " ".join(repr(p) for p in decoded.score)]

    def prediction_record(self, prediction) -> dict:
        return {"tokens": prediction.input, "tags": prediction.label, "scores": prediction.score}

    def to_dict(self) -> dict:
        return {"kind": self.kind, "tags": self.tags}

    @classmethod
    def from_dict(cls, facts: dict) -> "TokensTask":
        return cls(facts["tags"])


def token_metrics(truth: list[list[str]], predicted: list[list[str]], iob: bool) -> dict:
    """token_accuracy, macro_f1 and per_tag over words; with IOB2 tags also entity_precision / recall / f1 and
    per_type (exact spans, as conlleval and seqeval count them)."""
    flat_truth, flat_predicted = [t for row in truth for t in row], [t for row in predicted for t in row]
    if not flat_truth:
        raise HeadstartError("no words to score")
    tags = sorted(set(flat_truth))
    precision, recall, f1, support = precision_recall_fscore_support(flat_truth, flat_predicted, labels=tags,
                                                                     zero_division=0)
    result = {"token_accuracy": float(np.mean([a == b for a, b in zip(flat_truth, flat_predicted)])),
              "macro_f1": float(f1_score(flat_truth, flat_predicted, labels=tags, average="macro", zero_division=0)),
              "n": len(truth), "n_words": len(flat_truth),
              "per_tag": {t: {"precision": float(p), "recall": float(r), "f1": float(f), "support": int(s)}
                          for t, p, r, f, s in zip(tags, precision, recall, f1, support)}}
    if iob:
        from seqeval.metrics import classification_report  # imported here: only entity tags need it

        report = classification_report(truth, predicted, output_dict=True, zero_division=0)
        micro = report.pop("micro avg")
        result.update(entity_precision=float(micro["precision"]), entity_recall=float(micro["recall"]),
                      entity_f1=float(micro["f1-score"]),
                      per_type={name: {"precision": float(v["precision"]), "recall": float(v["recall"]),
                                       "f1": float(v["f1-score"]), "support": int(v["support"])}
                                for name, v in report.items() if not name.endswith(" avg")})
    return result


class MostFrequentTag(BaseEstimator):
    """X: lists of words, y: lists of tags. Each word gets the tag it carried most often in training (its exact
    form, else lower-cased); a word never seen gets the most frequent tag overall."""

    def fit(self, X, y):
        exact, lower = {}, {}
        for words, tags in zip(X, y):
            for word, tag in zip(words, tags):
                exact.setdefault(word, Counter())[tag] += 1
                lower.setdefault(word.lower(), Counter())[tag] += 1
        self.exact_ = {w: c.most_common(1)[0][0] for w, c in exact.items()}
        self.lower_ = {w: c.most_common(1)[0][0] for w, c in lower.items()}
        self.default_ = Counter(t for tags in y for t in tags).most_common(1)[0][0]
        return self

    def predict(self, X):
        return [[self.exact_.get(w) or self.lower_.get(w.lower(), self.default_) for w in words] for words in X]
