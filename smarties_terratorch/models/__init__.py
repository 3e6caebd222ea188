"""SMARTIES models."""

from .embed import SpectrumAwarePatchEmbed
from .vit import (
    SmartiesViT,
    build_sincos_pos_embed,
    smarties_vit_base_patch16,
    smarties_vit_large_patch16,
    smarties_vit_tiny_patch16,
)

__all__ = [
    "SmartiesViT",
    "SpectrumAwarePatchEmbed",
    "build_sincos_pos_embed",
    "smarties_vit_base_patch16",
    "smarties_vit_large_patch16",
    "smarties_vit_tiny_patch16",
]
