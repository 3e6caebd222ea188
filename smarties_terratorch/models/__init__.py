"""SMARTIES models."""

from .embed import SpectrumAwarePatchEmbed
from .vit import (
    VARIANTS,
    SmartiesVariant,
    SmartiesViT,
    build_sincos_pos_embed,
    default_cfgs,
    smarties_vit_base_patch16,
    smarties_vit_large_patch16,
    smarties_vit_tiny_patch16,
    variant_of,
)

__all__ = [
    "VARIANTS",
    "SmartiesVariant",
    "SmartiesViT",
    "SpectrumAwarePatchEmbed",
    "build_sincos_pos_embed",
    "default_cfgs",
    "smarties_vit_base_patch16",
    "smarties_vit_large_patch16",
    "smarties_vit_tiny_patch16",
    "variant_of",
]
