"""Deprecated alias of :mod:`smarties_terratorch.backbone` (removed in 0.2).

The module was renamed because ``smarties_terratorch/terratorch.py`` shadowed the real ``terratorch`` package for
scripts run from inside the package folder.
"""

import sys
import warnings

from . import backbone as _backbone

warnings.warn(
    "smarties_terratorch.terratorch is deprecated and will be removed in 0.2; use smarties_terratorch.backbone",
    DeprecationWarning,
    stacklevel=2,
)
sys.modules[__name__] = _backbone
