"""Startup hook of smarties-terratorch: the one way the SMARTIES backbones get into TerraTorch's registry.

``smarties_terratorch_autoload.pth`` (installed next to this module by the wheel and by ``pip install -e``) runs
:func:`_startup` at interpreter start; ``import smarties_terratorch`` runs :func:`install` itself. Either way a
finder on ``sys.meta_path`` waits for ``terratorch.registry`` to be imported and then imports
``smarties_terratorch.backbone``, so ``backbone: smarties_vit_base_patch16`` works in any TerraTorch YAML with no
extra line, ``custom_modules_path`` or import. It imports nothing else at startup (torch and TerraTorch take
seconds). ``SMARTIES_TERRATORCH_AUTOLOAD=0`` switches off the ``.pth`` (then ``import smarties_terratorch``, or
TerraTorch's ``custom_modules_path``, registers the backbones) and the Lightning callbacks below.
"""

import os
import sys

_TARGET = "terratorch.registry"
ENV_VAR = "SMARTIES_TERRATORCH_AUTOLOAD"


class RegisterWithTerraTorch:
    """A ``sys.meta_path`` finder: lets ``terratorch.registry`` import as usual, then registers the backbones.

    TerraTorch has no plugin entry points, so its registry never imports us by itself. The finder is not an
    ``importlib.abc.MetaPathFinder`` subclass on purpose: importing ``importlib.abc`` costs startup time.
    """

    def find_spec(self, name, path=None, target=None):  # noqa: ANN001, ANN201 (hot path, keep it bare)
        if name != _TARGET:
            return None
        import importlib
        import importlib.util

        sys.meta_path.remove(self)  # one shot; also keeps the find_spec below from finding us again
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.loader is not None:
            run = spec.loader.exec_module

            def exec_module(module):  # noqa: ANN001, ANN202
                run(module)
                importlib.import_module("smarties_terratorch.backbone")

            spec.loader.exec_module = exec_module
        return spec


def install() -> None:
    """Arm the finder once (idempotent); if the registry is already imported, register right away."""
    if _TARGET in sys.modules:
        import importlib

        importlib.import_module("smarties_terratorch.backbone")
    elif not any(type(f).__name__ == RegisterWithTerraTorch.__name__ for f in sys.meta_path):
        sys.meta_path.insert(0, RegisterWithTerraTorch())


def enabled() -> bool:
    """``False`` when ``SMARTIES_TERRATORCH_AUTOLOAD`` is ``0``/``false``/``no``/``off``."""
    return os.environ.get(ENV_VAR, "1").strip().lower() not in ("0", "false", "no", "off")


def _startup() -> None:
    """What the ``.pth`` line runs: arm the finder unless switched off. Never breaks interpreter start."""
    if enabled():
        try:
            install()
        except Exception as err:  # a startup hook must not stop Python from starting
            sys.stderr.write(f"smarties-terratorch: autoload disabled ({type(err).__name__}: {err})\n")


def lightning_callbacks() -> list:
    """Lightning's ``lightning.pytorch.callbacks_factory`` entry point: SMARTIES' callbacks for TerraTorch runs.

    Lightning calls it for every ``Trainer``. Outside TerraTorch (``terratorch`` not imported) or with the autoload
    switched off it returns nothing and imports nothing; in TerraTorch runs it adds the backbone module's
    callbacks (:func:`smarties_terratorch.backbone.lightning_callbacks`: ``SmartiesClsToken`` norm binding and the
    data/backbone band check) and
    :class:`smarties_terratorch.checkpoints.SafeCheckpointLoading`, so ``--ckpt_path`` never runs code from a file
    (a URL is refused, a local file is read as tensors and plain values).
    """
    if not enabled() or "terratorch" not in sys.modules:
        return []
    from smarties_terratorch.backbone import lightning_callbacks as callbacks
    from smarties_terratorch.checkpoints import SafeCheckpointLoading

    return [*callbacks(), SafeCheckpointLoading()]
