"""One-output-channel (sigmoid) segmentation, as PANGAEA trains and scores its ``num_classes: 1`` datasets.

PANGAEA's SpaceNet7 building mapping (``configs/dataset/spacenet7.yaml``: ``num_classes: 1``, classes
``[Background, Building]``) has a decoder with **one** output channel ``z``; the Dice criterion
(``criterion=dice``, ``pangaea.utils.losses.DICELoss``) reads ``sigmoid(z)``; the evaluator predicts
``sigmoid(z) > 0.5`` and scores a 2 x 2 confusion matrix: mIoU is the mean of the background and building IoUs.

:class:`SigmoidSegmentationTask` builds the model with that single channel and hands TerraTorch ``[0, z]``: a
constant background logit beside ``z``. Then ``argmax = (z > 0) = (sigmoid(z) > 0.5)``, ``softmax([0, z]) =
[1 - sigmoid(z), sigmoid(z)]``, and TerraTorch's two-class metrics (``mIoU`` macro over background and building,
pixels with ``ignore_index`` dropped) are PANGAEA's numbers; ``loss: ce`` is binary cross-entropy on ``z``.
:class:`PangaeaDiceLoss` is PANGAEA's Dice loss on ``sigmoid(z)``.
"""

from __future__ import annotations

from typing import Any

import torch
from terratorch.tasks import SemanticSegmentationTask
from torch import Tensor, nn

__all__ = ["PangaeaDiceLoss", "SigmoidSegmentationTask"]


def _foreground_logit(logits: Tensor) -> Tensor:
    """``z`` [B, 1, H, W] from one logit channel, or from two (``l1 - l0``: softmax's class-1 probability is
    ``sigmoid(l1 - l0)``)."""
    if logits.shape[1] == 1:
        return logits
    if logits.shape[1] == 2:
        return logits[:, 1:] - logits[:, :1]
    raise ValueError(f"PangaeaDiceLoss: expected 1 or 2 logit channels, got {logits.shape[1]}")


class PangaeaDiceLoss(nn.Module):
    """PANGAEA's Dice loss for a one-channel (sigmoid) output.

    Per image: ``dice = (2 * sum(p * t) + 1e-6) / (sum(p + t) + 1e-6)`` with ``p = sigmoid(z)`` and ``t`` the
    building mask, ignored pixels counted as background in ``t`` (PANGAEA masks the target only, not ``p``); the
    loss is ``1 - mean(dice)`` over the images that have at least one labelled pixel.

    Args:
        ignore_index: label value of unlabelled pixels.
    """

    def __init__(self, ignore_index: int = -1) -> None:
        super().__init__()
        self.ignore_index = ignore_index

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        """``logits`` [B, 1 or 2, H, W], ``target`` [B, H, W] with values 0, 1 or ``ignore_index``."""
        probs = torch.sigmoid(_foreground_logit(logits))[:, 0]
        valid = target != self.ignore_index
        t = torch.where(valid, target, torch.zeros_like(target)).to(probs.dtype) * valid
        inter = (probs * t).sum(dim=(1, 2))
        union = (probs + t).sum(dim=(1, 2))
        dice = (2 * inter + 1e-6) / (union + 1e-6)
        return 1 - dice[valid.flatten(1).any(dim=1)].mean()


class SigmoidSegmentationTask(SemanticSegmentationTask):
    """TerraTorch's ``SemanticSegmentationTask`` for a one-channel binary head (PANGAEA's ``num_classes: 1``).

    ``model_args.num_classes`` must be 1 (the head's channel); metrics are computed over the two classes
    ``[background, foreground]`` from ``sigmoid(z) > 0.5``. ``loss``: ``dice`` = :class:`PangaeaDiceLoss`
    (PANGAEA's ``criterion=dice``), or any TerraTorch loss name on ``[0, z]`` (``ce`` = binary cross-entropy).
    Predictions (``output_on_inference``) are the class map, or ``[1 - p, p]`` as probabilities.

    Args:
        *args, **kwargs: :class:`terratorch.tasks.SemanticSegmentationTask`.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        classes = (kwargs.get("model_args") or {}).get("num_classes")
        if classes != 1:
            raise ValueError(
                f"SigmoidSegmentationTask: model_args.num_classes must be 1 (one sigmoid output), got {classes}."
            )
        super().__init__(*args, **kwargs)

    def configure_losses(self) -> None:
        if self.hparams["loss"] == "dice":
            ignore = self.hparams["ignore_index"]
            self.criterion = PangaeaDiceLoss(-1 if ignore is None else ignore)
            return
        super().configure_losses()

    def configure_metrics(self) -> None:
        # TerraTorch sizes its metrics from model_args.num_classes: score the two classes of [0, z].
        model_args = self.hparams["model_args"]
        self.hparams["model_args"] = {**model_args, "num_classes": 2}
        try:
            super().configure_metrics()
        finally:
            self.hparams["model_args"] = model_args

    def forward(self, x: Any, **kwargs: Any) -> Any:
        """The model's output with a constant 0 background logit put before its single channel."""
        out = super().forward(x, **kwargs)
        z = out.output
        if z.dim() == 3:  # TerraTorch's pixel-wise model squeezes a single output channel away
            z = z.unsqueeze(1)
        out.output = torch.cat([torch.zeros_like(z), z], dim=1)
        return out
