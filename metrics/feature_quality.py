"""How much FID/KID in genforge's own feature space are worth: the feature network's quality on VAL.

genforge's FID/KID (:mod:`metrics.fid`) are distances in the feature space of a small network trained per
dataset (:mod:`metrics.feature_net`). A network that learned nothing (a classifier at chance accuracy, an
auto-encoder that reconstructs no better than the mean image) gives features that do not tell good samples
from bad ones, and FID in that space says little. This module scores the network on its VAL split:

* classifier (``task="classify"`` or ``"multilabel"``): ``quality = (accuracy - chance) / (1 - chance)``
  (Cohen's kappa form: 0 at chance, 1 when every VAL label is right); chance is ``1 / num_classes``, or for
  multi-hot attributes the majority value's VAL frequency per attribute, averaged;
* auto-encoder (``task="autoencode"``, unlabelled data): ``quality = 1 - mse / variance`` (the coefficient
  of determination R^2: 0 for reconstructing every image by VAL's mean image, 1 for perfect
  reconstructions), both on VAL's pixels in ``[-1, 1]``.

Below ``threshold`` (default :data:`MIN_QUALITY`), or with no VAL data to judge by, the network is *poor*.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

#: the quality below which the feature network counts as poor (an accuracy 20% of the way from chance to
#: perfect, or a reconstruction explaining 20% of the pixel variance)
MIN_QUALITY = 0.2


@dataclass(frozen=True)
class FeatureQuality:
    """The verdict on a feature network.

    Attributes:
        task: ``"classify"``, ``"multilabel"`` or ``"autoencode"``.
        quality: the score (see the module docstring), at most 1; ``nan`` when VAL is empty.
        score: the raw VAL number: accuracy (fraction) or reconstruction MSE; ``None`` without VAL data.
        baseline: chance accuracy or the data's variance; ``None`` without VAL data.
        threshold: the quality below which :attr:`poor` is true.
    """

    task: str
    quality: float
    score: float | None
    baseline: float | None
    threshold: float = MIN_QUALITY

    @property
    def poor(self) -> bool:
        """True when the quality is below the threshold or cannot be measured (no VAL data)."""
        return math.isnan(self.quality) or self.quality < self.threshold

    def describe(self) -> str:
        """One phrase: ``"validation accuracy 0.100 (chance 0.100): quality 0.00"`` or the auto-encoder's
        ``"validation reconstruction MSE 0.21 (data variance 0.22): quality 0.05"``."""
        if self.score is None or self.baseline is None:
            return "no validation images to measure it on"
        if self.task == "autoencode":
            return (f"validation reconstruction MSE {self.score:.4g} (the data's variance "
                    f"{self.baseline:.4g}): quality {self.quality:.2f}")
        return (f"validation accuracy {self.score:.3f} (chance {self.baseline:.3f}): "
                f"quality {self.quality:.2f}")


def feature_quality(report: dict, threshold: float = MIN_QUALITY) -> FeatureQuality:
    """Judge a feature network by its VAL ``report`` (:func:`metrics.feature_net.train_feature_net`'s
    metrics: ``task``, ``val_accuracy``, ``val_loss``, ``val_chance_accuracy``, ``val_variance``).

    Returns:
        A :class:`FeatureQuality`; ``quality`` is ``nan`` when the report has no VAL values (empty VAL
        split). An auto-encoder on constant images (variance 0) scores 1 when it reconstructs them exactly,
        else ``-inf``.

    Raises:
        KeyError: the report lacks ``task``.
    """
    task = report["task"]
    if task == "autoencode":
        score, baseline = report.get("val_loss"), report.get("val_variance")
        if score is None or baseline is None:
            return FeatureQuality(task, float("nan"), score, baseline, threshold)
        if baseline <= 0:
            return FeatureQuality(task, 1.0 if score <= 0 else float("-inf"), score, baseline, threshold)
        return FeatureQuality(task, 1.0 - score / baseline, score, baseline, threshold)
    score, baseline = report.get("val_accuracy"), report.get("val_chance_accuracy")
    if score is None or baseline is None:
        return FeatureQuality(task, float("nan"), score, baseline, threshold)
    if baseline >= 1:  # one class (or constant attributes): every guess is right, nothing is learned
        return FeatureQuality(task, 0.0, score, baseline, threshold)
    return FeatureQuality(task, (score - baseline) / (1.0 - baseline), score, baseline, threshold)
