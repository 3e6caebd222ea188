"""Lightning checkpoints without code: every ``ckpt_path`` a Trainer of ours loads is read as tensors and plain values.

Lightning reads ``trainer.fit/validate/test/predict(ckpt_path=...)`` with ``torch.load``, and an ``http(s)`` path
with ``weights_only=False`` (a pickle from the network runs whatever it holds). Here:

* :class:`SafeCheckpointIO` is a ``CheckpointIO`` plugin whose loading refuses URLs and reads local files through the
  package's safe reader (:mod:`smarties_terratorch.weights`: ``torch.load(weights_only=True)`` plus a few plain
  types; a file holding other objects is refused in one line naming them). Saving is left to the plugin it wraps.
* :class:`SafeCheckpointLoading` is a callback that puts that plugin into the Trainer it runs in. ``smarties
  pretrain`` adds it, and Lightning adds it to every Trainer of a TerraTorch run (the package's
  ``lightning.pytorch.callbacks_factory`` entry point), so ``terratorch fit/test/predict --ckpt_path URL`` is refused
  too. In your own scripts pass ``Trainer(plugins=[SafeCheckpointIO()])`` or ``callbacks=[SafeCheckpointLoading()]``.
* :func:`check_ckpt_path` refuses a bad ``--ckpt_path`` before a CLI reads the checkpoint's hyperparameters.

Not covered: strategies that load checkpoints without their ``CheckpointIO`` (DeepSpeed, sharded FSDP folders).
"""

from __future__ import annotations

import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from lightning.pytorch import Callback
from lightning.pytorch.plugins.io import CheckpointIO, TorchCheckpointIO

from .weights import CheckpointError, _torch_load, refuse_url

__all__ = ["SafeCheckpointIO", "SafeCheckpointLoading", "check_ckpt_path", "read_lightning_checkpoint"]

#: ``ckpt_path`` values Lightning resolves itself to a checkpoint of the current run.
_SPECIAL = ("last", "best", "hpc")

_HINT = (
    " Resume only from checkpoints your own runs wrote; for weights from elsewhere, use a .safetensors file "
    "(backbone_ckpt_path / encoder_ckpt_path)."
)


def _local(path: Any) -> Path:
    refuse_url(str(path))
    local = Path(path).expanduser()
    if not local.is_file():
        where = " (it is a folder)" if local.is_dir() else ""
        raise FileNotFoundError(f"Checkpoint file not found: {local}{where}")
    return local


def read_lightning_checkpoint(path: str | Path) -> dict[str, Any]:
    """A whole Lightning checkpoint (weights, optimiser, loop and callback states), read without running code.

    Raises:
        CheckpointError: a URL, a file holding objects beyond tensors and plain types (named), or not a checkpoint.
        FileNotFoundError: no such file.
    """
    local = _local(path)
    ckpt = _torch_load(local, hint=_HINT)
    if not isinstance(ckpt, Mapping):
        raise CheckpointError(f"{local} is not a Lightning checkpoint (it holds a {type(ckpt).__name__}).")
    return dict(ckpt)


def check_ckpt_path(ckpt_path: Any) -> None:
    """Refuse a ``--ckpt_path`` that is a URL or a file that cannot be read safely, before anything reads it.

    Lightning's special values (``last``, ``best``, ``hpc``, ``registry:...``) and ``None`` pass; a missing file is
    left to Lightning's own message. A local file is opened memory-mapped, so its tensors are not read.

    Raises:
        CheckpointError: as :func:`read_lightning_checkpoint`.
    """
    if ckpt_path is None or str(ckpt_path) in _SPECIAL or str(ckpt_path).startswith("registry:"):
        return
    refuse_url(str(ckpt_path))
    local = Path(ckpt_path).expanduser()
    if local.is_file():
        _torch_load(local, hint=_HINT, mmap=zipfile.is_zipfile(local))  # mmap needs torch's zip format


class SafeCheckpointIO(CheckpointIO):
    """A ``CheckpointIO`` that loads with :func:`read_lightning_checkpoint` and saves with the one it wraps.

    Lightning's ``weights_only`` argument is ignored when loading: nothing is ever unpickled beyond plain types.

    Args:
        inner: the plugin that saves and removes checkpoints (default: Lightning's ``TorchCheckpointIO``).
    """

    def __init__(self, inner: CheckpointIO | None = None) -> None:
        self.inner = inner if inner is not None else TorchCheckpointIO()

    def save_checkpoint(self, checkpoint: dict[str, Any], path: Any, storage_options: Any = None) -> None:
        self.inner.save_checkpoint(checkpoint, path, storage_options=storage_options)

    def load_checkpoint(self, path: Any, map_location: Any = None, weights_only: bool | None = None) -> dict[str, Any]:
        return read_lightning_checkpoint(path)  # on the CPU: Lightning moves model and optimiser states itself

    def remove_checkpoint(self, path: Any) -> None:
        self.inner.remove_checkpoint(path)

    def teardown(self) -> None:
        self.inner.teardown()


class SafeCheckpointLoading(Callback):
    """Makes the Trainer it runs in load checkpoints with :class:`SafeCheckpointIO` (from ``setup``, which Lightning
    calls before it restores ``ckpt_path``)."""

    def setup(self, trainer: Any, pl_module: Any, stage: str) -> None:
        strategy = trainer.strategy
        if not isinstance(strategy.checkpoint_io, SafeCheckpointIO):
            strategy.checkpoint_io = SafeCheckpointIO(strategy.checkpoint_io)
