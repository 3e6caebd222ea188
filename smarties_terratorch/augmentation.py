"""Training augmentation of samples with torchvision v2: one random draw moves the image, every modality and the
mask together.

:class:`ImageTransform` wraps a v2 transform for a ``{"image", "mask"?, ...}`` sample dict (torchgeo's sample
convention), :class:`RandomRot90` is the exact quarter turn, :func:`flip_rot90` the fine-tuning protocol's flips.
Kept apart from :mod:`smarties_terratorch.normalization` so that normalising does not import torchvision.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torchvision import tv_tensors
from torchvision.transforms import v2

__all__ = ["ImageTransform", "RandomRot90", "flip_rot90"]


class RandomRot90(v2.Transform):
    """Rotate by ``k * 90`` degrees, ``k`` uniform in 0..3 (exact; torchvision's RandomRotation interpolates)."""

    def make_params(self, flat_inputs: list[Any]) -> dict[str, Any]:
        return {"k": int(torch.randint(0, 4, ()))}

    def transform(self, inpt: Any, params: dict[str, Any]) -> Any:
        if isinstance(inpt, tv_tensors.BoundingBoxes):
            raise TypeError("RandomRot90 rotates images and masks, not bounding boxes")
        if not params["k"] or not isinstance(inpt, torch.Tensor):
            return inpt
        return tv_tensors.wrap(torch.rot90(inpt, params["k"], dims=(-2, -1)), like=inpt)


def flip_rot90() -> v2.Transform:
    """Random horizontal flip, vertical flip (p = 0.5 each) and rot90: the fine-tuning protocol's flips.

    The random numbers are drawn in the order of the hand-written version this replaces (``rand`` for each flip,
    then ``randint`` for ``k``), so a seed gives the same images as before."""
    return v2.Compose([v2.RandomHorizontalFlip(), v2.RandomVerticalFlip(), RandomRot90()])


class ImageTransform:
    """Apply a torchvision v2 transform to a sample dict (torchgeo-style sample transform; picklable for workers).

    ``sample["image"]`` (a ``[C, H, W]`` tensor, or a ``{modality: tensor}`` dict whose modalities then move
    together) goes in as ``tv_tensors.Image`` and an optional ``sample["mask"]`` as ``tv_tensors.Mask``, so one set
    of random parameters moves them all; other keys (the label) pass through. Plain, contiguous tensors come out.

    Args:
        transform: the v2 transform (e.g. :func:`flip_rot90` or a ``v2.Compose``).
    """

    def __init__(self, transform: Callable[..., Any]) -> None:
        self.transform = transform

    def __call__(self, sample: dict[str, Any]) -> dict[str, Any]:
        image = sample["image"]
        wrapped = dict(sample)
        if isinstance(image, dict):
            wrapped["image"] = {k: tv_tensors.Image(v) for k, v in image.items()}
        else:
            wrapped["image"] = tv_tensors.Image(image)
        if "mask" in sample:
            wrapped["mask"] = tv_tensors.Mask(sample["mask"])
        return {k: _plain(v) for k, v in self.transform(wrapped).items()}

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.transform!r})"


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, tv_tensors.TVTensor):
        return value.as_subclass(torch.Tensor).contiguous()
    return value
