"""supervised: train the backbone with a head on a labelled source task; keep the head as its source head.

The engine does the training (a strategy's plan, early stopping on a stratified validation split, the
best epoch's weights kept). The trained head stays with the backbone as its `source_head`, so that
LEEP / NCE can later read the source task's predictions on a new task.

    METHODS.get("supervised")(backbone, labelled_examples, PretrainOptions(strategy="full"), True)
"""

from __future__ import annotations


from .. import strategies
from .. import train as engine
from ..backbones import Backbone, SourceHead
from ..checkpoints import Checkpoints
from ..config import TrainSpec
from ..data import Examples, TaskData
from ..data.splits import check_classes, require_classes, stratified_split
from ..errors import HeadstartError
from ..tasks import ClassificationTask
from ._method import METHODS, PretrainOptions, Pretrained

__all__ = ["supervised", "VAL_FRACTION"]

VAL_FRACTION = 0.1  # of the source data, kept aside for early stopping and the reported accuracy


@METHODS.register("supervised")
def supervised(backbone: Backbone, examples: Examples, options: PretrainOptions, show_progress: bool,
               checkpoints: Checkpoints | None = None) -> Pretrained:
    """Backbone + new head trained by `options.strategy` on a stratified train/val split of the source set."""
    if examples.labels is None:
        raise HeadstartError(f"{examples.source} has no labels; --method supervised needs labelled data "
                             "(class subfolders, or a 'label' column)")
    require_classes(examples, "pretrain --method supervised")
    check_classes(examples, 2, "to keep one for validation")
    train, val = stratified_split(examples, VAL_FRACTION, options.seed)
    kind = ClassificationTask.from_labels(examples.labels)
    classes = kind.classes
    task = TaskData(train, val, val, kind, examples.modality, [f"validation: a stratified {VAL_FRACTION:.0%} "
                                                                  f"hold-out of {examples.source}"])
    plan = strategies.plan(options.strategy, options.epochs, options.lr)
    engine.progress.console.print(plan.describe(len(backbone.layer_groups())), highlight=False)
    spec = TrainSpec(batch_size=options.batch_size, precision=options.precision, seed=options.seed)
    model, history = engine.train_plan(backbone, task, plan, spec, options.precision, show_progress,
                                       checkpoints=checkpoints)

    backbone.source_head = SourceHead(classes, model.head.weight.detach().clone(), model.head.bias.detach().clone())
    rows = [{"epoch": r.epoch, "phase": r.phase, "loss": r.train_loss, "val_accuracy": r.val_accuracy,
             "val_loss": r.val_loss, "seconds": round(r.seconds, 3)} for r in history.records]
    # epochs per phase and the first phase's lr: what --epochs and --lr mean, so config.yaml reruns the same plan
    summary = {"strategy": plan.strategy, "epochs": plan.phases[0].epochs, "lr": plan.phases[0].lr,
               "best_epoch": history.best_epoch, "best_val_accuracy": history.best_val_accuracy,
               "n_train": len(train), "n_val": len(val), "source_classes": classes,
               "train_seconds": round(history.seconds, 2)}
    return Pretrained(backbone, rows, summary)
