"""How inputs go into batches: texts by length, so that a batch pays for its own longest text, not the data set's.

A text batch is padded to its longest text, so one long text in a random batch makes every short one pay for
its length. Embedding and prediction therefore run texts in length order (results put back in input order),
and training draws its batches from runs of similar length, shuffled within and between them (seeded), as
Hugging Face's group_by_length does. Images all have one size: their order is left alone.

    order = length_order(inputs)                                 # a permutation (identity for images)
    batches = LengthGroupedBatches(lengths, 32, generator)       # a DataLoader batch_sampler
"""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

__all__ = ["input_length", "length_order", "LengthGroupedBatches", "training_loader", "starts_of", "rows_index"]

# Batches are formed within runs of this many batches of similar length: enough to pad little, few enough that
# an epoch still mixes short and long runs in a random order.
GROUP_BATCHES = 50


def input_length(x) -> int | None:
    """What a text costs to read, in characters (a list of words: its words and the spaces between them); None
    for an image, whose size the backbone fixes."""
    if isinstance(x, str):
        return len(x)
    if isinstance(x, list):
        return sum(len(word) + 1 for word in x)
    return None


def length_order(inputs: list) -> np.ndarray:
    """The order to embed inputs in: texts longest first (stable), so that each batch holds texts of one length
    and the first batch shows the largest memory at once; anything else as given."""
    lengths = [input_length(x) for x in inputs]
    if not inputs or lengths[0] is None:
        return np.arange(len(inputs))
    return np.argsort(-np.asarray(lengths), kind="stable")


def starts_of(counts: np.ndarray) -> np.ndarray:
    """Each run's first row when runs of these lengths follow one another: [2, 3, 1] -> [0, 2, 5]."""
    return np.cumsum(counts) - counts


def rows_index(starts: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """The row numbers of consecutive runs: starts [5, 10], counts [2, 3] -> [5, 6, 10, 11, 12]."""
    return np.repeat(starts - starts_of(counts), counts) + np.arange(counts.sum())


class LengthGroupedBatches:
    """A batch sampler: every epoch a seeded permutation, cut into groups of GROUP_BATCHES batches, each group
    sorted by length and cut into batches, and the full batches of the epoch shuffled; a short one comes last,
    where a plain DataLoader has it (Accelerate splits each batch between processes and expects full ones before
    the last). Every example once an epoch; the generator is the phase's shuffling generator, so a checkpoint's
    state replays the same batches."""

    def __init__(self, lengths, batch_size: int, generator: torch.Generator):
        self.lengths = np.asarray(lengths)
        self.batch_size, self.generator = batch_size, generator

    def __len__(self) -> int:
        return -(-len(self.lengths) // self.batch_size)

    def __iter__(self):
        order = torch.randperm(len(self.lengths), generator=self.generator).numpy()
        group = self.batch_size * GROUP_BATCHES
        batches = []
        for start in range(0, len(order), group):
            members = order[start:start + group]
            members = members[np.argsort(-self.lengths[members], kind="stable")]
            batches += [members[i:i + self.batch_size].tolist() for i in range(0, len(members), self.batch_size)]
        short = [b for b in batches if len(b) < self.batch_size]
        full = [b for b in batches if len(b) == self.batch_size]
        for b in torch.randperm(len(full), generator=self.generator).tolist():
            yield full[b]
        yield from short


def training_loader(dataset: Dataset, inputs: list, batch_size: int, generator: torch.Generator, collate) -> DataLoader:
    """A phase's training batches over `dataset` (one item per input): texts in runs of similar length, images at
    random, each drawn from the phase's shuffling generator."""
    lengths = [input_length(x) for x in inputs]
    if inputs and lengths[0] is not None:
        return DataLoader(dataset, batch_sampler=LengthGroupedBatches(lengths, batch_size, generator),
                          collate_fn=collate)
    return DataLoader(dataset, batch_size, shuffle=True, collate_fn=collate, generator=generator)
