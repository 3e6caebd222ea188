"""Checkpoint safety, in one place: weights files and Lightning checkpoints are read as tensors and plain values,
never as code, and never from a URL.

Reading files (every loader of the package goes through these):

* :func:`load_state_dict` reads a state dict from ``.safetensors`` or, with ``torch.load(weights_only=True)``
  (tensors and plain types only), from ``.pt``/``.pth``/``.bin``/``.ckpt``; :func:`check_checkpoint` checks a file
  the same way without keeping its tensors. A pickle that holds other objects is refused with a message naming them
  (read from its opcodes by :func:`unsafe_objects`), never run. The one exception is :func:`read_task_checkpoint`
  with ``trust=True`` (``smarties predict --trust-checkpoint``), for files you made.
* :func:`refuse_url` refuses a URL where a local file is expected.

Lightning reads ``trainer.fit/validate/test/predict(ckpt_path=...)`` with ``torch.load``, and an ``http(s)`` path
with ``weights_only=False`` (a pickle from the network runs whatever it holds). Here:

* :class:`SafeCheckpointIO` is a ``CheckpointIO`` plugin whose loading refuses URLs and reads local files through the
  safe reader above (``torch.load(weights_only=True)`` plus a few plain types; a file holding other objects is
  refused in one line naming them). Saving is left to the plugin it wraps.
* :class:`SafeCheckpointLoading` is a callback that puts that plugin into the Trainer it runs in. ``smarties
  pretrain`` adds it, and Lightning adds it to every Trainer of a TerraTorch run (the package's
  ``lightning.pytorch.callbacks_factory`` entry point), so ``terratorch fit/test/predict --ckpt_path URL`` is refused
  too. In your own scripts pass ``Trainer(plugins=[SafeCheckpointIO()])`` or ``callbacks=[SafeCheckpointLoading()]``.
* :func:`check_ckpt_path` refuses a bad ``--ckpt_path`` before a CLI reads the checkpoint's hyperparameters.

Not covered: strategies that load checkpoints without their ``CheckpointIO`` (DeepSpeed, sharded FSDP folders).
"""

from __future__ import annotations

import _compat_pickle
import argparse
import contextlib
import io
import logging
import pathlib
import pickle
import pickletools
import re
import warnings
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
import yaml
from lightning.pytorch import Callback
from lightning.pytorch.plugins.io import CheckpointIO, TorchCheckpointIO
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file

from .weights import WEIGHTS

__all__ = [
    "CheckpointError",
    "SafeCheckpointIO",
    "SafeCheckpointLoading",
    "WeightsUnavailableError",
    "check_checkpoint",
    "check_ckpt_path",
    "is_torch_file",
    "load_state_dict",
    "read_lightning_checkpoint",
    "read_task_checkpoint",
    "refuse_url",
    "unsafe_objects",
]

log = logging.getLogger(__name__)


class CheckpointError(ValueError):
    """A checkpoint that cannot be used: corrupt, unsafe to unpickle, or not for this architecture."""


class WeightsUnavailableError(FileNotFoundError):
    """The weights are neither at a local path nor obtainable from the Hub (offline and not cached, ...)."""


_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


def refuse_url(source: Any, what: str = "checkpoint") -> None:
    """Refuse a URL (``http(s)://``, ``s3://``, ...) where a local file is expected.

    A checkpoint read straight from the network is one nobody checked, and a pickle can carry code: only local
    files are read (as tensors and plain values), and released weights are fetched by tag and verified.

    Raises:
        CheckpointError: ``source`` is a URL; the message says what to do instead.
    """
    if isinstance(source, str) and _URL.match(source):
        encoders = list(dict.fromkeys(w.base for w in WEIGHTS.values() if w.base))  # declared without importing models
        raise CheckpointError(
            f"{source}: {what} files are not read from URLs (nothing checks what the network sends, and a pickled "
            f"file can carry code). Download it, check it, and pass the local file; released SMARTIES weights are "
            f"fetched and verified by tag ({', '.join(encoders[:2])}, ...)."
        )


def _unwrap(obj: Any, path: Path) -> dict[str, torch.Tensor]:
    # Lightning checkpoints nest under "state_dict", the authors' training checkpoints under "model".
    for key in ("state_dict", "model", "module"):
        if isinstance(obj, Mapping) and isinstance(obj.get(key), Mapping):
            obj = obj[key]
            break
    if not isinstance(obj, Mapping):
        raise CheckpointError(f"{path} does not hold a state dict (found {type(obj).__name__}).")
    return {k: v for k, v in obj.items() if isinstance(v, torch.Tensor)}


# Harmless plain types that Lightning/TerraTorch hyperparameters may hold besides builtins and tensors: creating
# them runs no code beyond storing their arguments.
_SAFE_GLOBALS: list[Any] = [argparse.Namespace, pathlib.PosixPath, pathlib.PurePosixPath]

_STRING_OPS = {"SHORT_BINUNICODE", "BINUNICODE", "BINUNICODE8", "UNICODE", "SHORT_BINSTRING", "BINSTRING", "STRING"}


def _py3_name(module: str, name: str) -> str:
    # Protocol 0-2 pickles (torch.save's default) may store Python 2 names; pickle maps them the same way.
    if (module, name) in _compat_pickle.NAME_MAPPING:
        module, name = _compat_pickle.NAME_MAPPING[(module, name)]
    return f"{_compat_pickle.IMPORT_MAPPING.get(module, module)}.{name}"


def _globals_in_pickle(data: bytes) -> tuple[dict[str, str], bool]:
    """Every global a pickle stream imports, found by reading its opcodes (nothing is executed).

    ``torch.serialization.get_unsafe_globals_in_checkpoint`` does the same but stops at the first protocol-4
    opcode (``FRAME``), which is exactly what a hostile file may use; :mod:`pickletools` reads every protocol.

    Returns:
        ``{name as stored: Python 3 name}`` (both ``module.name``), and whether the bytes start with a whole pickle.
    """
    found: dict[str, str] = {}
    whole = False
    pushed: list[Any] = []  # recent string arguments, for STACK_GLOBAL (protocol 4+)
    memo: dict[int, Any] = {}
    stream = io.BytesIO(data)
    while stream.tell() < len(data):
        try:
            for op, arg, _ in pickletools.genops(stream):
                if op.name in ("GLOBAL", "INST", "STACK_GLOBAL"):
                    module, name = str(arg).split(" ", 1) if op.name != "STACK_GLOBAL" else (
                        str(pushed[-2]) if len(pushed) > 1 else "?", str(pushed[-1]) if pushed else "?")
                    found[f"{module}.{name}"] = _py3_name(module, name)
                elif op.name in _STRING_OPS:
                    pushed.append(arg)
                elif op.name == "MEMOIZE":
                    memo[len(memo)] = pushed[-1] if pushed else None
                elif op.name in ("PUT", "BINPUT", "LONG_BINPUT"):
                    memo[int(arg)] = pushed[-1] if pushed else None
                elif op.name in ("GET", "BINGET", "LONG_BINGET"):
                    pushed.append(memo.get(int(arg)))
            whole = True
        except (ValueError, EOFError):  # not (or no more) pickle opcodes: truncated or not a pickle
            break
    return found, whole


def _scan(path: Path) -> tuple[dict[str, str], bool]:
    """The globals of a ``torch.save`` file (zip or legacy) that the safe reader does not create by default.

    Returns:
        ``{name as stored: Python 3 name}``, and whether the file holds whole pickles at all.
    """
    found: dict[str, str] = {}
    whole = False
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as zf:
                for member in (n for n in zf.namelist() if n.endswith("data.pkl")):
                    names, whole = _globals_in_pickle(zf.read(member))
                    found.update(names)
        else:
            found, whole = _globals_in_pickle(path.read_bytes())
    except (OSError, zipfile.BadZipFile, ValueError):
        return {}, False
    allowed = {f"{g.__module__}.{g.__qualname__}" for g in _SAFE_GLOBALS}
    try:  # torch's own default allow-list (tensor rebuilders, OrderedDict, ...); private, so guarded
        from torch._weights_only_unpickler import _get_allowed_globals

        allowed |= set(_get_allowed_globals())
    except (ImportError, AttributeError):
        allowed |= {g for g in found.values() if g.startswith("torch.") or g == "collections.OrderedDict"}
    return {raw: py3 for raw, py3 in found.items() if raw not in allowed and py3 not in allowed}, whole


def _unsafe_globals(path: Path) -> dict[str, str]:
    return _scan(path)[0]


def unsafe_objects(path: str | Path) -> list[str]:
    """The Python objects a ``torch.save`` file would create beyond tensors and plain types, read from its pickle
    opcodes (nothing is executed); empty for a file without any, or one that is not a pickle at all."""
    return list(dict.fromkeys(_unsafe_globals(Path(path)).values()))


def is_torch_file(path: str | Path) -> bool:
    """Whether a file starts like a ``torch.save`` file: torch's zip format, or a pickle (the legacy format)."""
    with open(path, "rb") as fh:
        head = fh.read(4)
    return head.startswith(b"PK\x03\x04") or head[:1] == b"\x80"


def _torch_reason(err: BaseException) -> str:
    """torch's explanation of a failed load, without its advice on how to disable the safety check."""
    text = str(err)
    if "WeightsUnpickler error:" in text:
        text = text.split("WeightsUnpickler error:", 1)[1]
    text = re.split(r"Please use `torch\.serialization|Check the documentation of torch\.load", text)[0]
    # Never pass on advice to switch the check off, whatever torch version phrased it.
    sentences = [t for t in re.split(r"(?<=\.)\s+", " ".join(text.split())) if "weights_only" not in t]
    return " ".join(sentences).strip(" .") or type(err).__name__


def _refusal(path: Path, unsafe: Mapping[str, str], trust_hint: bool, hint: str | None = None) -> str:
    if hint is None:
        hint = (
            " If you made this file yourself, pass --trust-checkpoint (Python: trust=True) to load it."
            if trust_hint
            else " Re-save its state dict as safetensors (safetensors.torch.save_file) where you trust the file."
        )
    names = ", ".join(list(dict.fromkeys(unsafe.values()))[:6])
    return (
        f"{path} contains pickled code/objects ({names}) that are not loaded by default: loading it could run code "
        f"hidden in the file.{hint}"
    )


# torch >= 2.6 takes (object, "module.name") pairs in its allow-list: needed for the inert placeholders.
_NAMED_GLOBALS = torch.__version__ >= (2, 6)


def _allowing(extra: list[Any]) -> contextlib.AbstractContextManager:
    scoped = getattr(torch.serialization, "safe_globals", None)  # torch >= 2.5; older: the default list only
    return scoped(extra) if scoped is not None else contextlib.nullcontext()


class _Inert:
    """Stands in for an object of a refused class: takes any arguments and state, runs nothing."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def __setstate__(self, state: Any) -> None:
        pass


def _torch_load(
    path: Path,
    *,
    trust: bool = False,
    trust_hint: bool = False,
    inert: Mapping[str, str] | None = None,
    mmap: bool = False,
    hint: str | None = None,
) -> Any:
    """``torch.load`` that never unpickles arbitrary objects unless ``trust``; errors become :class:`CheckpointError`.

    ``inert`` names refused globals to read as :class:`_Inert` placeholders instead (their code never runs);
    ``hint`` replaces the refusal's advice (what to do instead).
    """
    if trust:
        try:
            return torch.load(path, map_location="cpu", weights_only=False)
        except Exception as err:  # noqa: BLE001 - unpickling runs arbitrary code, which may raise anything
            raise CheckpointError(
                f"{path} could not be loaded (trusted, full unpickling): {type(err).__name__}: {_torch_reason(err)}"
            ) from err
    placeholders = [(_Inert, name) for pair in (inert or {}).items() for name in pair]
    try:
        with _allowing([*_SAFE_GLOBALS, *placeholders]):
            with warnings.catch_warnings():  # torch warns about protocol 4+ pickles; the error below says more
                warnings.filterwarnings("ignore", message="Detected pickle protocol")
                return torch.load(path, map_location="cpu", weights_only=True, mmap=mmap or None)
    except pickle.UnpicklingError as err:
        unsafe, whole = _scan(path)
        if unsafe:
            raise CheckpointError(_refusal(path, unsafe, trust_hint, hint)) from None
        if not whole:
            raise CheckpointError(f"{path} is not a readable PyTorch checkpoint (truncated or corrupt).") from None
        raise CheckpointError(
            f"{path} is not a PyTorch checkpoint that can be read safely ({_torch_reason(err)}): re-save it with "
            f"torch.save's default pickle protocol, or as safetensors."
        ) from None
    except (RuntimeError, EOFError, OSError, KeyError, ValueError, AttributeError, TypeError) as err:
        # Not a torch.save file at all, or a truncated one: torch raises many types for bad bytes.
        reason = _torch_reason(err).split(". ")[0] if isinstance(err, (RuntimeError, OSError)) else "no torch.save data"
        raise CheckpointError(f"{path} is not a readable PyTorch checkpoint (truncated or corrupt): {reason}.") from err


def load_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Read a state dict from ``.safetensors`` or, safely, from ``.pt``/``.pth``/``.bin``/``.ckpt``.

    Pickled files are read with ``torch.load(weights_only=True)``: tensors and plain containers only.

    Raises:
        CheckpointError: corrupt/truncated files, pickles that contain code/objects (named in the message), or an
            unsupported file type.
    """
    path = Path(path)
    if path.suffix == ".safetensors":
        try:
            return load_file(path)
        except (SafetensorError, OSError, ValueError) as err:
            raise CheckpointError(f"{path} is not a readable safetensors file (truncated or corrupt): {err}") from err
    if path.suffix in _PICKLE_SUFFIXES:
        return _unwrap(_torch_load(path), path)
    raise CheckpointError(_unsupported(path))


_PICKLE_SUFFIXES = (".pt", ".pth", ".bin", ".ckpt")


def _unsupported(path: Path) -> str:
    return f"{path}: unsupported checkpoint type {path.suffix!r}; use .safetensors (or .pt/.pth/.bin/.ckpt)."


def check_checkpoint(path: str | Path) -> Path:
    """Check that a weights file can be read safely, without keeping its tensors in memory.

    Safetensors files get their header checked against the file size; pickled files are opened with
    ``torch.load(weights_only=True)`` memory-mapped (tensor data is not read).

    Returns:
        ``path``.

    Raises:
        WeightsUnavailableError: no such file.
        CheckpointError: as :func:`load_state_dict` would raise.
    """
    path = Path(path)
    if not path.is_file():
        raise WeightsUnavailableError(f"Checkpoint {path} not found" + (" (it is a folder)." if path.is_dir() else "."))
    if path.suffix == ".safetensors":
        try:
            with safe_open(path, "pt") as f:
                f.keys()
        except (SafetensorError, OSError, ValueError) as err:
            raise CheckpointError(f"{path} is not a readable safetensors file (truncated or corrupt): {err}") from err
    elif path.suffix in _PICKLE_SUFFIXES:
        _unwrap(_torch_load(path, mmap=zipfile.is_zipfile(path)), path)  # mmap needs torch's zip format
    else:
        raise CheckpointError(_unsupported(path))
    return path


def _contains(obj: Any, cls: type) -> bool:
    if isinstance(obj, cls):
        return True
    if isinstance(obj, Mapping):
        return any(_contains(v, cls) for v in obj.values())
    if isinstance(obj, (list, tuple, set)):
        return any(_contains(v, cls) for v in obj)
    return False


def _hparams_yaml(path: Path) -> Path | None:
    # Lightning writes <version>/hparams.yaml and the checkpoints into <version>/checkpoints/.
    for candidate in (path.parent / "hparams.yaml", path.parent.parent / "hparams.yaml"):
        if candidate.is_file():
            return candidate
    return None


def read_task_checkpoint(path: str | Path, *, trust: bool = False) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """The state dict and hyperparameters of a Lightning/TerraTorch task checkpoint (``terratorch fit``'s ``.ckpt``).

    Read with ``torch.load(weights_only=True)`` plus a few harmless plain types (``argparse.Namespace``, paths):
    no code from the file runs. When only the hyperparameters hold other objects, the state dict is still read
    (those objects become inert placeholders) and the hyperparameters come from the ``hparams.yaml`` Lightning
    writes beside the checkpoints (``<version>/hparams.yaml``).

    Args:
        path: the checkpoint file.
        trust: unpickle everything (``torch.load(weights_only=False)``): only for files you made yourself, since
            a pickle can run any code.

    Returns:
        ``(state_dict, hyper_parameters)``.

    Raises:
        WeightsUnavailableError: no such file.
        CheckpointError: an unreadable file, one that holds code/objects beyond plain types (unless ``trust``), or
            one without hyperparameters (a bare state dict).
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise WeightsUnavailableError(f"Checkpoint {path} not found" + (" (it is a folder)." if path.is_dir() else "."))
    hparams_file = None
    try:
        ckpt = _torch_load(path, trust=trust, trust_hint=True)
    except CheckpointError:
        unsafe = _unsafe_globals(path)
        hparams_file = _hparams_yaml(path)
        if trust or not unsafe or hparams_file is None or not _NAMED_GLOBALS:
            raise
        # Read the state dict with the refused objects replaced by inert placeholders; keep it only if the
        # placeholders are confined to what we do not use (hyperparameters, optimiser and callback states).
        ckpt = _torch_load(path, trust_hint=True, inert=unsafe)
        if not isinstance(ckpt, Mapping) or _contains(ckpt.get("state_dict"), _Inert):
            raise CheckpointError(_refusal(path, unsafe, trust_hint=True)) from None
        skipped = ", ".join(unsafe.values())
        log.warning("%s holds objects that are not loaded (%s); hyperparameters read from %s", path, skipped, hparams_file)
    hparams = ckpt.get("hyper_parameters") if isinstance(ckpt, Mapping) else None
    state = ckpt.get("state_dict") if isinstance(ckpt, Mapping) else None
    if not (isinstance(state, Mapping) and isinstance(hparams, Mapping)):
        raise CheckpointError(
            f"{path} is not a Lightning task checkpoint with state_dict and hyper_parameters: use the '<epoch>.ckpt' "
            f"file terratorch fit writes into <run>/checkpoints/."
        )
    if hparams_file is not None:
        # The YAML holds every hyperparameter Lightning could write; plain checkpoint-only entries (e.g. the
        # ``_class_path`` LightningCLI adds) are kept.
        plain = {k: v for k, v in hparams.items() if not _contains(v, _Inert)}
        hparams = {**plain, **_read_hparams_yaml(hparams_file, path)}
    return _unwrap(ckpt, path), dict(hparams)


def _read_hparams_yaml(hparams_file: Path, ckpt: Path) -> dict[str, Any]:
    try:
        hparams = yaml.safe_load(hparams_file.read_text())
    except (OSError, yaml.YAMLError) as err:
        raise CheckpointError(
            f"{ckpt}'s hyperparameters hold objects that are not loaded by default, and {hparams_file} cannot be "
            f"read as plain YAML ({' '.join(str(err).split())[:200]}). If you made the checkpoint yourself, pass "
            f"--trust-checkpoint (Python: trust=True)."
        ) from None
    if not isinstance(hparams, dict):
        found = type(hparams).__name__
        raise CheckpointError(f"{hparams_file} does not hold a mapping of hyperparameters (found {found}).")
    return hparams




# ------------------------------------------------------------------------------------------ Lightning checkpoints
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
