"""smarties-terratorch: the SMARTIES spectrum-aware remote-sensing foundation model (arXiv 2506.19585) for
TerraTorch, PANGAEA and plain PyTorch.

Main entry points: :func:`resolve_bands` (band names / wavelengths -> spectral projections), the encoder
factories ``smarties_vit_{tiny,base,large}_patch16``, :func:`load_pretrained` / :func:`save_weights` and
:class:`SmartiesNormalize`.
"""

from .models import (
    SmartiesViT,
    smarties_vit_base_patch16,
    smarties_vit_large_patch16,
    smarties_vit_tiny_patch16,
)
from .spectrum import resolve_bands
from .transforms import SmartiesNormalize, normalization_stats
from .weights import WEIGHTS, get_weights, load_pretrained, save_weights

__version__ = "0.1.0"

__all__ = [
    "WEIGHTS",
    "SmartiesNormalize",
    "SmartiesViT",
    "get_weights",
    "load_pretrained",
    "normalization_stats",
    "resolve_bands",
    "save_weights",
    "smarties_vit_base_patch16",
    "smarties_vit_large_patch16",
    "smarties_vit_tiny_patch16",
]
