"""Stratified splits and subsets, seeded so that the same seed gives the same split. Examples whose labels are not
classes (a regression target) are split at random: their Task says what to stratify by (tasks/)."""

from __future__ import annotations

import warnings

import numpy as np
from sklearn.model_selection import train_test_split

from ..errors import HeadstartError
from ..tasks import TASKS
from ._types import Examples

# Labels that are not classes: enough examples for the splits that follow means this many per example a class
# would need (3 for a test and a validation example: at least 15 in all).
_PER_CLASS_WITHOUT_CLASSES = 5


def has_classes(examples: Examples) -> bool:
    """Whether the examples' labels are classes to stratify by."""
    return TASKS.get(examples.kind).strata(examples.labels) is not None


def require_classes(examples: Examples, command: str) -> None:
    """Refuse, in one line, labels that are not classes in a command that works on classes only so far."""
    if not has_classes(examples):
        raise HeadstartError(f"{examples.source} holds {examples.kind} targets, and {command} works on class "
                             "labels only so far; fit, evaluate and predict take every kind")


def check_classes(examples: Examples, min_per_class: int, why: str) -> None:
    """At least two classes, each with enough examples for the splits that follow (labels that are not classes:
    enough examples in all)."""
    if not has_classes(examples):
        need = _PER_CLASS_WITHOUT_CLASSES * min_per_class
        if len(examples) < need:
            raise HeadstartError(f"{examples.source} has {len(examples)} examples; need at least {need} {why}")
        return
    names, counts = np.unique(np.array(examples.labels, dtype=object), return_counts=True)
    if len(names) < 2:
        raise HeadstartError(f"{examples.source} has {len(names)} class ({', '.join(map(str, names))}); "
                             "a classifier needs at least two")
    small = [(n, c) for n, c in zip(names, counts) if c < min_per_class]
    if small:
        listed = ", ".join(f"'{n}' ({c})" for n, c in small[:5])
        raise HeadstartError(f"{examples.source}: class {listed} has too few examples; need at least "
                             f"{min_per_class} per class {why}")


def stratified_split(examples: Examples, fraction: float, seed: int) -> tuple[Examples, Examples]:
    """(rest, held_out) with about `fraction` of each class held out, at least one example of each."""
    if not has_classes(examples):
        n_held = max(int(round(fraction * len(examples))), 1)
        rest, held = train_test_split(np.arange(len(examples)), test_size=n_held, random_state=seed)
        return examples.subset(sorted(rest)), examples.subset(sorted(held))
    labels = np.array(examples.labels, dtype=object)
    n_classes = len(set(examples.labels))
    n_held = max(int(round(fraction * len(examples))), n_classes)
    if len(examples) - n_held < n_classes:
        raise HeadstartError(f"{examples.source}: too few examples ({len(examples)}) to hold out "
                             f"{fraction:.0%} per class; add examples or pass --test")
    rest, held = train_test_split(np.arange(len(examples)), test_size=n_held, stratify=labels, random_state=seed)
    return examples.subset(sorted(rest)), examples.subset(sorted(held))


def stratified_subset(examples: Examples, size: int, seed: int) -> Examples:
    """A stratified random subset of `size` examples (all of them if there are fewer)."""
    if size >= len(examples):
        return examples
    if not has_classes(examples):
        keep, _ = train_test_split(np.arange(len(examples)), train_size=size, random_state=seed)
        return examples.subset(sorted(keep))
    n_classes = len(set(examples.labels))
    if size < 2 * n_classes:
        raise HeadstartError(f"--train-size {size} is too small for {n_classes} classes; give at least "
                             f"{2 * n_classes} (two examples per class)")
    check_classes(examples, 2, f"to draw a stratified --train-size {size} subset")
    labels = np.array(examples.labels, dtype=object)
    # Leaving out fewer examples than there are classes cannot be stratified; leaving out so few, chance is fine.
    stratify = labels if len(examples) - size >= n_classes else None
    keep, _ = train_test_split(np.arange(len(examples)), train_size=size, stratify=stratify, random_state=seed)
    return examples.subset(sorted(keep))


def train_subset(examples: Examples, size: int, seed: int) -> Examples:
    """--train-size: a stratified subset of `size` examples; all of them, with a warning, when there are fewer
    (the run's config.yaml records the size asked for, its metrics the size used)."""
    if size > len(examples):
        warnings.warn(f"--train-size {size}: {examples.source or 'the data'} holds {len(examples)} examples; all "
                      "of them are used", stacklevel=2)
    return stratified_subset(examples, size, seed)


def evaluation_splits(examples: Examples, folds: int | None, seeds: int, fraction: float = 0.2
                      ) -> list[tuple[Examples, Examples]]:
    """(train, held_out) pairs: (stratified) K-fold when `folds`, else `seeds` (stratified) hold-outs."""
    from sklearn.model_selection import KFold, StratifiedKFold

    if folds is None:
        return [stratified_split(examples, fraction, seed) for seed in range(seeds)]
    classes = has_classes(examples)
    largest = min(examples.labels.count(c) for c in set(examples.labels)) if classes else len(examples)
    if folds < 2 or folds > largest:
        where = f"the smallest class of {examples.source} has {largest} examples" if classes else \
            f"{examples.source} has {largest} examples"
        raise HeadstartError(f"--folds {folds}: need 2 <= K <= {largest} ({where})")
    splitter = (StratifiedKFold if classes else KFold)(n_splits=folds, shuffle=True, random_state=0)
    strata = np.array(examples.labels, dtype=object) if classes else None
    return [(examples.subset(a), examples.subset(b)) for a, b in splitter.split(np.zeros(len(examples)), strata)]


def few_shot(examples: Examples, per_class: int, seed: int) -> Examples:
    """At most `per_class` examples of each class, drawn at random (all of a smaller class)."""
    rng = np.random.default_rng(seed)
    labels = np.array(examples.labels, dtype=object)
    keep = []
    for label in sorted(set(examples.labels)):
        index = np.flatnonzero(labels == label)
        keep.extend(rng.permutation(index)[:per_class])
    return examples.subset(sorted(keep))
