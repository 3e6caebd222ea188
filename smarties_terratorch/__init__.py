"""smarties-terratorch: the SMARTIES spectrum-aware remote-sensing foundation model (arXiv 2506.19585) for
TerraTorch, PANGAEA and plain PyTorch.

Main entry points: :func:`resolve_bands` (band names / wavelengths -> spectral projections), the encoder
factories ``smarties_vit_{tiny,base,large}_patch16``, :func:`load_pretrained` / :func:`save_weights` and
:class:`SmartiesNormalize`.
"""

import importlib
import importlib.abc
import importlib.util
import sys
from typing import Any

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


class _RegisterWithTerraTorch(importlib.abc.MetaPathFinder):
    """Registers the SMARTIES backbones as soon as ``terratorch.registry`` has been imported.

    TerraTorch has no plugin entry points, and importing it costs seconds, so we neither import it here nor ask
    users to import things in a particular order: this finder waits for TerraTorch's own import, lets it finish,
    then imports :mod:`smarties_terratorch.backbone` (which registers the backbones).
    """

    def find_spec(self, name: str, path: Any, target: Any = None) -> Any:
        if name != "terratorch.registry":
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.loader is not None:
            run = spec.loader.exec_module

            def exec_module(module: Any) -> None:
                run(module)
                importlib.import_module(f"{__name__}.backbone")

            spec.loader.exec_module = exec_module  # type: ignore[method-assign]
        return spec


if "terratorch.registry" in sys.modules:
    importlib.import_module(f"{__name__}.backbone")
elif not any(isinstance(f, _RegisterWithTerraTorch) for f in sys.meta_path):
    sys.meta_path.insert(0, _RegisterWithTerraTorch())
