"""Segmentation task: TerraTorch's ``SemanticSegmentationTask`` with label smoothing and the released linear-probe
feature normalisation (:class:`FeatureNormDecoder`)."""

from __future__ import annotations

from typing import Any

import torch
from terratorch.tasks import SemanticSegmentationTask
from torch import Tensor, nn

__all__ = ["FeatureNormDecoder", "SmartiesSegmentationTask"]


class FeatureNormDecoder(nn.Module):
    """A decoder followed by ``BatchNorm2d(C, affine=False, eps=1e-6)``: the released linear probe's feature
    normalisation, applied per token.

    The released linear-probe head is ``BatchNorm1d(D, affine=False, eps=1e-6)`` then ``Linear``. On a
    ``[B, D, h, w]`` token map, ``BatchNorm2d`` normalises each channel over batch and positions, which is exactly
    ``BatchNorm1d`` over the ``B * h * w`` token vectors; TerraTorch's head then applies the 1x1 convolution (the
    per-token ``Linear``). Without affine parameters the normalisation adds nothing trainable, so the probe stays
    linear: it only stops feature dimensions with large or uneven scales from dominating the probe's optimisation.

    Args:
        decoder: the wrapped decoder (e.g. TerraTorch's ``IdentityDecoder``); needs ``out_channels``.
        eps: the normalisation's epsilon (the released head's 1e-6).
    """

    def __init__(self, decoder: nn.Module, eps: float = 1e-6) -> None:
        super().__init__()
        channels = getattr(decoder, "out_channels", None)
        if not isinstance(channels, int):
            raise ValueError(
                f"feature_norm needs a decoder with an integer out_channels; {type(decoder).__name__} has {channels!r}"
            )
        self.decoder = decoder
        self.norm = nn.BatchNorm2d(channels, affine=False, eps=eps)

    @property
    def out_channels(self) -> int:
        return self.decoder.out_channels

    def forward(self, x: list[Tensor]) -> Tensor:
        out = self.decoder(x)
        if out.ndim != 4:
            raise ValueError(f"FeatureNormDecoder expects a [B, C, h, w] decoder output, got {tuple(out.shape)}")
        return self.norm(out)


class SmartiesSegmentationTask(SemanticSegmentationTask):
    """TerraTorch's ``SemanticSegmentationTask`` with label smoothing and an optional feature normalisation.

    The authors' DFC2020 probe trains with label-smoothed cross-entropy (0.1); TerraTorch's loss names take no
    smoothing argument. ``feature_norm: true`` puts a non-affine ``BatchNorm2d`` between the decoder and the head
    (:class:`FeatureNormDecoder`): with ``IdentityDecoder`` and a 1x1-convolution head this is the released
    linear-probe head (``BatchNorm1d(affine=False)`` + ``Linear``) applied to every token. With both options at
    their defaults the task is TerraTorch's, unchanged.

    Args:
        label_smoothing: ``torch.nn.CrossEntropyLoss(label_smoothing=...)`` with ``loss: ce``; 0 = TerraTorch's loss.
        feature_norm: normalise the decoder output without affine parameters before the head.
        *args, **kwargs: :class:`terratorch.tasks.SemanticSegmentationTask`.
    """

    def __init__(self, *args: Any, label_smoothing: float = 0.0, feature_norm: bool = False, **kwargs: Any) -> None:
        if not 0 <= label_smoothing < 1:
            raise ValueError(f"label_smoothing must be in [0, 1), got {label_smoothing}")
        # read by configure_losses / configure_models, which the parent's __init__ calls
        self._label_smoothing = float(label_smoothing)
        self._feature_norm = bool(feature_norm)
        super().__init__(*args, **kwargs)
        self.hparams["label_smoothing"] = self._label_smoothing
        self.hparams["feature_norm"] = self._feature_norm

    def configure_models(self) -> None:
        super().configure_models()
        if getattr(self, "_feature_norm", False):
            self.model.decoder = FeatureNormDecoder(self.model.decoder)

    def configure_losses(self) -> None:
        smoothing = getattr(self, "_label_smoothing", 0.0)
        if not smoothing:
            super().configure_losses()
            return
        if self.hparams["loss"] != "ce":
            raise ValueError(f"label_smoothing needs loss: ce, got loss: {self.hparams['loss']!r}")
        weights = self.hparams["class_weights"]
        self.criterion = nn.CrossEntropyLoss(
            ignore_index=self.hparams["ignore_index"],
            weight=torch.tensor(weights, dtype=torch.float32) if weights is not None else None,
            label_smoothing=smoothing,
        )
