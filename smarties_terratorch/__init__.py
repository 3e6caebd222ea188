"""smarties-terratorch: the SMARTIES spectrum-aware remote-sensing foundation model (arXiv 2506.19585) for
TerraTorch, PANGAEA and plain PyTorch.

Main entry points: :func:`resolve_bands` (band names / wavelengths -> spectral projections), the encoder
factories ``smarties_vit_{tiny,base,large}_patch16``, :func:`load_pretrained` / :func:`save_weights` and
:class:`SmartiesNormalize`.
"""

import importlib
import logging
from typing import Any

import _smarties_terratorch_autoload

# name -> submodule; resolved on first use (PEP 562) so that ``smarties --help`` and the light subcommands start
# without importing torch.
_LAZY = {
    "SmartiesViT": "models",
    "smarties_vit_base_patch16": "models",
    "smarties_vit_large_patch16": "models",
    "smarties_vit_tiny_patch16": "models",
    "resolve_bands": "spectrum",
    "SmartiesNormalize": "normalization",
    "normalization_stats": "normalization",
    "WEIGHTS": "weights",
    "get_weights": "weights",
    "load_pretrained": "pretrained",
    "save_weights": "pretrained",
}

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


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        if _LAZY[name] == "weights":
            importlib.import_module(".models", __name__)  # the models declare (register) the encoders' weights
        value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value  # later lookups skip this function
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})


class _ConsoleUntilConfigured(logging.StreamHandler):
    """Shows the package's INFO lines (weights loaded, requested tiling applied) on standard error while the program
    has configured no logging; once the root logger has handlers, records go only through them (propagation)."""

    def emit(self, record: logging.LogRecord) -> None:
        if not logging.getLogger().handlers:
            super().emit(record)


_log = logging.getLogger(__name__)
if _log.level == logging.NOTSET:  # a level set by the program comes first
    _log.setLevel(logging.INFO)
if not any(isinstance(h, _ConsoleUntilConfigured) for h in _log.handlers):
    _log.addHandler(_ConsoleUntilConfigured())

# Importing the package arms the startup hook's finder (the one registration mechanism), so the backbones reach
# TerraTorch's registry in either import order, whatever SMARTIES_TERRATORCH_AUTOLOAD says (that variable only
# switches off the .pth at interpreter start).
_smarties_terratorch_autoload.install()
