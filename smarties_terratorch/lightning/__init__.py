"""Deprecated alias of :mod:`smarties_terratorch.tasks` (removed in 0.2).

The package was renamed because ``smarties_terratorch/lightning/`` shadowed the real ``lightning`` package for
scripts run from inside the package folder. ``smarties_terratorch.lightning.<module>`` still imports
``smarties_terratorch.tasks.<module>`` (old configs and checkpoints keep working) with a deprecation warning.
"""

import importlib
import importlib.abc
import importlib.util
import sys
import warnings
from typing import Any

warnings.warn(
    "smarties_terratorch.lightning is deprecated and will be removed in 0.2; use smarties_terratorch.tasks",
    DeprecationWarning,
    stacklevel=2,
)


class _Alias(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Serves ``smarties_terratorch.lightning.X`` as the module object ``smarties_terratorch.tasks.X``."""

    prefix = __name__ + "."

    def find_spec(self, name: str, path: Any, target: Any = None) -> Any:
        if not name.startswith(self.prefix):
            return None
        return importlib.util.spec_from_loader(name, self)

    def create_module(self, spec: Any) -> None:
        return None

    def exec_module(self, module: Any) -> None:
        # The import system returns whatever sys.modules holds under the name after exec_module: the real module.
        sys.modules[module.__name__] = importlib.import_module(
            "smarties_terratorch.tasks." + module.__name__[len(self.prefix) :]
        )


if not any(isinstance(f, _Alias) for f in sys.meta_path):
    sys.meta_path.insert(0, _Alias())
