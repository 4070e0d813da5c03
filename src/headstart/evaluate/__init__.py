"""Evaluation: metrics and plots."""

from .metrics import classification_metrics
from .plots import plot_confusion_matrix, plot_learning_curve

__all__ = ["classification_metrics", "plot_learning_curve", "plot_confusion_matrix"]
