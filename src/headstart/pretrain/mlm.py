"""Masked-language-model pretraining: continue (or start) a BERT-style text encoder on unlabelled text.

Domain-adaptive pretraining: the encoder learns to fill in masked words of the user's own corpus under a
fresh MLM head (all-MiniLM-L6-v2 ships none; the decoder is tied to the word embeddings), then the trained
encoder weights go back into the backbone, so its tokenizer and mean pooling stay as they were.

    pretrained = METHODS.get("mlm")(backbones.load(BackboneSpec(name="minilm-l6")), corpus, PretrainOptions(), True)
"""

from __future__ import annotations

import math
import os
import time

import numpy as np
import torch
import torch.nn.functional as F
from accelerate import Accelerator
from accelerate.utils import set_seed
from torch import nn
from torch.utils.data import DataLoader
from transformers import AutoModelForMaskedLM, DataCollatorForLanguageModeling, get_cosine_schedule_with_warmup

from ..backbones import Backbone
from ..checkpoints import Checkpoints, capture_random, restore_random
from ..data import Examples
from ..errors import HeadstartError
from ..model import autocast
from ..tasks import as_text
from ..train.engine import check_loss
from ..train.progress import progress_bar
from ._method import METHODS, PretrainOptions, Pretrained

__all__ = ["mlm", "masked_lm", "mask_collator"]

DEFAULT_EPOCHS = 1
DEFAULT_LR = 5e-5      # continuing a pretrained encoder; from random weights pass a larger one (e.g. 5e-4)
WARMUP = 0.06          # share of the steps spent warming up, as in RoBERTa
WEIGHT_DECAY = 0.01
HEAD_LR_MULT = 20      # the MLM head starts from random weights on top of a trained encoder
VAL_SHARE = 0.05       # held out to measure masked-token accuracy and perplexity
MIN_VAL, MIN_TRAIN = 8, 4  # a few texts: ~40 masked tokens to score at the least
EVAL_BATCH = 64


class MaskedLM(nn.Module):
    """Encoder + MLM head scoring only the masked positions: the vocabulary projection costs as much as the
    whole encoder per token, and 85% of tokens carry no loss."""

    def __init__(self, model):
        super().__init__()
        self.model = model
        heads = [child for name, child in model.named_children() if name != model.base_model_prefix]
        if len(heads) != 1:
            raise HeadstartError(f"{type(model).__name__} is not a BERT-style masked-LM (one encoder + one head); "
                                 f"mlm pretraining needs a BERT-style text backbone such as minilm-l6")
        self.head = heads[0]

    def forward(self, labels: torch.Tensor, **batch) -> tuple[torch.Tensor, torch.Tensor]:
        hidden = self.model.base_model(**batch).last_hidden_state
        masked = labels != -100
        return self.head(hidden[masked]), labels[masked]


def masked_lm(backbone: Backbone) -> MaskedLM:
    """A masked-LM model of the backbone's architecture holding the backbone's encoder weights; the head is new."""
    tokenizer, model = getattr(backbone, "tokenizer", None), getattr(backbone, "model", None)
    config = getattr(model, "config", None)
    if backbone.modality != "text" or tokenizer is None or config is None:
        raise HeadstartError(f"mlm pretraining needs a text backbone with a tokenizer (e.g. minilm-l6); this "
                             f"backbone is a {backbone.modality} model; use --method supervised or contrastive")
    if getattr(tokenizer, "mask_token", None) is None:
        raise HeadstartError(f"the backbone's tokenizer ({type(tokenizer).__name__}) has no mask token; "
                             f"mlm pretraining needs a BERT-style tokenizer")
    try:
        mlm_model = AutoModelForMaskedLM.from_config(config)
    except ValueError:
        raise HeadstartError(f"transformers has no masked-LM head for model type '{config.model_type}'; "
                             f"mlm pretraining needs a BERT-style text backbone such as minilm-l6") from None
    encoder = mlm_model.base_model
    missing, unexpected = encoder.load_state_dict(model.state_dict(), strict=False)
    # The only weights the encoder may lack are the sentence pooler's, which masked-LM does not use.
    if missing or any(not key.startswith("pooler.") for key in unexpected):
        raise HeadstartError(f"the backbone's weights do not fit a {type(mlm_model).__name__} encoder (missing "
                             f"{missing[:3]}, unexpected {unexpected[:3]}); mlm needs a BERT-style encoder")
    mlm_model.tie_weights()
    return MaskedLM(mlm_model)


def mask_collator(tokenizer, mask_prob: float, seed: int) -> DataCollatorForLanguageModeling:
    """Pads a batch and masks `mask_prob` of its tokens: 80% [MASK], 10% a random token, 10% unchanged."""
    return DataCollatorForLanguageModeling(tokenizer, mlm_probability=mask_prob, seed=seed)


def _tokenize(tokenizer, texts: list[str], max_length: int) -> list[dict]:
    encoded = tokenizer(list(texts), truncation=True, max_length=max_length, return_special_tokens_mask=True)
    return [{key: encoded[key][i] for key in encoded} for i in range(len(texts))]


def _split(examples: Examples, options: PretrainOptions) -> tuple[list[str], list[str]]:
    """A seeded ~5% of the corpus for validation (at least MIN_VAL texts); the rest trains."""
    if examples.modality != "text":
        raise HeadstartError(f"{examples.source}: mlm pretraining reads text (a .txt file, one text per line, or a "
                             f".csv/.jsonl 'text' column), not {examples.modality}s")
    texts = [text for text in (str(as_text(t)) for t in examples.inputs) if text.strip()]  # words: joined
    if len(texts) < MIN_VAL + MIN_TRAIN:
        raise HeadstartError(f"{examples.source}: {len(texts)} non-empty text(s); mlm pretraining needs at least "
                             f"{MIN_VAL + MIN_TRAIN} (and really thousands) to train and validate on")
    order = np.random.default_rng(options.seed).permutation(len(texts))
    n_val = max(MIN_VAL, round(VAL_SHARE * len(texts)))
    return [texts[i] for i in order[n_val:]], [texts[i] for i in order[:n_val]]


@torch.no_grad()
def _validate(net: MaskedLM, batches: list[dict], precision: str) -> dict:
    """Masked-token accuracy, mean masked-token loss and perplexity on fixed, pre-masked batches."""
    net.eval()
    loss_sum, correct, count = 0.0, 0, 0
    for batch in batches:
        with autocast(precision):
            logits, targets = net(**batch)
        loss_sum += float(F.cross_entropy(logits.float(), targets, reduction="sum"))
        correct += int((logits.argmax(-1) == targets).sum())
        count += len(targets)
    loss = loss_sum / max(count, 1)
    return {"val_accuracy": correct / max(count, 1), "val_loss": loss, "val_perplexity": math.exp(min(loss, 50.0))}


def _optimizer(net: MaskedLM, lr: float) -> torch.optim.Optimizer:
    """AdamW; the fresh head learns HEAD_LR_MULT times faster than the encoder (its tied decoder is the
    encoder's word embeddings and trains with them); biases and LayerNorm weights are not decayed, as in BERT."""
    encoder = list(net.model.base_model.parameters())
    shared = {id(p) for p in encoder}
    head = [p for p in net.head.parameters() if id(p) not in shared]
    groups = []
    for params, group_lr in ((encoder, lr), (head, lr * HEAD_LR_MULT)):
        groups.append({"params": [p for p in params if p.ndim >= 2], "lr": group_lr, "weight_decay": WEIGHT_DECAY})
        groups.append({"params": [p for p in params if p.ndim < 2], "lr": group_lr, "weight_decay": 0.0})
    return torch.optim.AdamW([g for g in groups if g["params"]])


@METHODS.register("mlm")
def mlm(backbone: Backbone, examples: Examples, options: PretrainOptions, show_progress: bool = True,
        checkpoints: Checkpoints | None = None) -> Pretrained:
    """Masked-LM pretraining of a text backbone on `examples` (labels ignored); its encoder is updated in place."""
    if not 0.0 < options.mask_prob < 1.0:
        raise HeadstartError(f"--mask-prob {options.mask_prob}: the share of masked tokens must be between 0 and 1 "
                             f"(exclusive); 0.15 is the usual")
    set_seed(options.seed)  # before the head is initialised
    net = masked_lm(backbone)
    train_texts, val_texts = _split(examples, options)
    epochs, lr = options.epochs or DEFAULT_EPOCHS, options.lr or DEFAULT_LR
    tokenizer, max_length = backbone.tokenizer, backbone.max_length
    # The validation masks are drawn once, so every epoch is scored on the same masked tokens.
    val_collate = mask_collator(tokenizer, options.mask_prob, options.seed + 1)
    val_items = _tokenize(tokenizer, val_texts, max_length)
    val_batches = [val_collate(val_items[i:i + EVAL_BATCH]) for i in range(0, len(val_items), EVAL_BATCH)]
    masking, shuffle = mask_collator(tokenizer, options.mask_prob, options.seed), torch.Generator()
    loader = DataLoader(_tokenize(tokenizer, train_texts, max_length), options.batch_size, shuffle=True,
                        collate_fn=masking, generator=shuffle.manual_seed(options.seed))
    optimizer = _optimizer(net, lr)
    steps = epochs * len(loader)
    scheduler = get_cosine_schedule_with_warmup(optimizer, int(WARMUP * steps), steps)
    accelerator = Accelerator()
    trained, optimizer, loader = accelerator.prepare(net, optimizer, loader)
    saved = checkpoints.latest() if checkpoints is not None else None
    if saved is None:
        before = _validate(net, val_batches, options.precision)
        history = [{"epoch": 0, **before}]  # the fresh head on the starting encoder: the floor to improve on
    else:  # where an interrupted run's last epoch left off
        history, before = saved["history"], saved["history"][0]
        _restore(saved, net, optimizer, scheduler, shuffle, masking)
    for epoch in range(len(history), epochs + 1):
        t0, losses = time.perf_counter(), []
        trained.train()
        with progress_bar(f"mlm epoch {epoch}/{epochs}", len(loader), show_progress) as advance:
            for batch in loader:
                with autocast(options.precision):
                    logits, targets = trained(**batch)
                loss = F.cross_entropy(logits.float(), targets)
                value = check_loss(loss.item(), f"mlm epoch {epoch}", lr)
                accelerator.backward(loss)
                accelerator.clip_grad_norm_(trained.parameters(), 1.0)
                optimizer.step()
                scheduler.step()
                optimizer.zero_grad(set_to_none=True)
                losses.append(value)
                advance(1)
        row = {"epoch": epoch, "loss": float(np.mean(losses)), **_validate(net, val_batches, options.precision)}
        history.append({**row, "seconds": round(time.perf_counter() - t0, 2)})
        if checkpoints is not None:
            checkpoints.save({"net": net.state_dict(), "optimizer": optimizer.state_dict(),
                              "scheduler": scheduler.state_dict(), "shuffle": shuffle.get_state(),
                              "masking": None if masking.generator is None else masking.generator.get_state(),
                              "random": capture_random(), "history": history})
    _copy_back(net, backbone)
    summary = {"method": "mlm", "epochs": epochs, "lr": lr, "mask_prob": options.mask_prob,
               "train_texts": len(train_texts), "val_texts": len(val_texts),
               "val_accuracy_before": before["val_accuracy"], "val_perplexity_before": before["val_perplexity"],
               "val_accuracy": history[-1]["val_accuracy"], "val_perplexity": history[-1]["val_perplexity"]}
    return Pretrained(backbone, history, summary)


def _restore(saved: dict, net: MaskedLM, optimizer, scheduler, shuffle: torch.Generator,
             masking: DataCollatorForLanguageModeling) -> None:
    net.load_state_dict(saved["net"])
    optimizer.load_state_dict(saved["optimizer"])
    scheduler.load_state_dict(saved["scheduler"])
    shuffle.set_state(saved["shuffle"])
    if saved["masking"] is not None:  # the collator's own masking stream, as transformers makes it on first use
        masking.generator = masking.get_generator(masking.seed, "pt")
        masking._generator_pid = os.getpid()
        masking.generator.set_state(saved["masking"])
    restore_random(saved["random"])


def _copy_back(net: MaskedLM, backbone: Backbone) -> None:
    """The trained encoder weights into the backbone's own module (its pooler, unused by masked-LM, stays)."""
    missing, unexpected = backbone.model.load_state_dict(net.model.base_model.state_dict(), strict=False)
    assert not unexpected and all(key.startswith("pooler.") for key in missing), (missing, unexpected)
    backbone.model.eval()
