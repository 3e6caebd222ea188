"""Released SMARTIES weights: declarations, loading (local path first, then the Hugging Face Hub at one resolved
commit, :func:`resolve_revision`) and saving in the official layout.

The official files hold the encoder state dict unprefixed (``cls_token``, ``pos_embed``, ``blocks.*``,
``norm.*``, ``spectrum_projection.spectrum_embeds.{0..16}.proj.*``) and, for fine-tuned files, a head
(``head.*``). Files are read with safetensors or ``torch.load(weights_only=True)`` (tensors and plain types
only): a pickle that holds other objects is refused with a message naming them, never run. The one exception is
:func:`read_task_checkpoint` with ``trust=True`` (``smarties predict --trust-checkpoint``), for files you made.
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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import yaml
from huggingface_hub import constants as hf_constants
from huggingface_hub import hf_hub_download
from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError, OfflineModeIsEnabled
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file
from timm.layers import resample_abs_pos_embed
from torch import nn

from .fetch import file_sha256
from .io import atomic_path
from .models.vit import default_cfgs, variant_of  # the variant table; models import weights only lazily

__all__ = [
    "WEIGHTS",
    "CheckpointError",
    "HubFile",
    "LoadReport",
    "SmartiesWeights",
    "WeightsUnavailableError",
    "check_architecture",
    "check_checkpoint",
    "checkpoint_filter_fn",
    "checkpoint_path",
    "default_weights_for",
    "fetch_hub_weights",
    "get_weights",
    "is_pinned",
    "is_torch_file",
    "load_pretrained",
    "load_state_dict",
    "read_checkpoint",
    "read_task_checkpoint",
    "resolve_revision",
    "refuse_url",
    "save_weights",
    "unsafe_objects",
    "verify_hub_file",
]

log = logging.getLogger(__name__)


class CheckpointError(ValueError):
    """A checkpoint that cannot be used: corrupt, unsafe to unpickle, or not for this architecture."""


class WeightsUnavailableError(FileNotFoundError):
    """The weights are neither at a local path nor obtainable from the Hub (offline and not cached, ...)."""


@dataclass(frozen=True)
class SmartiesWeights:
    """One released weights file.

    Attributes:
        name: tag, e.g. ``smarties-v1-vitb``.
        arch: factory that builds the matching model.
        repo_id, filename: location on the Hugging Face Hub.
        revision: pinned commit of ``repo_id``. ``None`` = not recorded yet: downloading then resolves the
            repo's current commit and logs it (:func:`resolve_revision`), never a silent moving ``main``.
        sha256: expected file hash, checked after download when known.
        num_classes, head_type, num_modalities: the head the file carries (see ``SmartiesViT``).
        sensors: input sensors (band presets) in modality order.
        statistics: normalisation tables (:mod:`~smarties_terratorch.normalization`) per modality.
        base: encoder weights to load first when a file turns out to hold the head only.
    """

    name: str
    arch: str
    repo_id: str
    filename: str
    revision: str | None = None
    sha256: str | None = None
    num_classes: int = 0
    head_type: str = "linear"
    num_modalities: int = 1
    sensors: tuple[str, ...] = ()
    statistics: tuple[str, ...] = ()
    base: str | None = None
    license: str = "Apache-2.0"
    paper: str = "https://arxiv.org/abs/2506.19585"
    description: str = ""
    meta: Mapping[str, Any] = field(default_factory=dict)

    def model_kwargs(self) -> dict[str, Any]:
        """Constructor arguments that make a model whose head matches this file."""
        return {"num_classes": self.num_classes, "head_type": self.head_type, "num_modalities": self.num_modalities}


_FT_REPO = "gsumbul/SMARTIES-v1-finetuned-models"


# Released encoder tag -> the variant whose default it is (from the variant table).
_ARCH_OF_WEIGHTS = {cfg.weights: name for name, cfg in default_cfgs.items() if cfg.weights}


def _finetuned(size: str, task: str, **kw: Any) -> SmartiesWeights:
    arch = _ARCH_OF_WEIGHTS[f"smarties-v1-{size}"]
    return SmartiesWeights(
        name=f"smarties-v1-{size}-{task}",
        arch=arch,
        repo_id=_FT_REPO,
        filename=f"smarties-v1-{size}-{task}.safetensors",
        base=f"smarties-v1-{size}",
        license="unknown",
        **kw,
    )


_BEN_S2 = dict(num_classes=19, sensors=("S2-L2A",), statistics=("S2-L2A",))
_BEN_S1 = dict(num_classes=19, head_type="linprobe", sensors=("S1",), statistics=("S1-GRD",))
_BEN_MM = dict(
    num_classes=19, head_type="linprobe", num_modalities=2, sensors=("S2-L2A", "S1"), statistics=("S2-L2A", "S1-GRD")
)
_EUROSAT = dict(num_classes=10, sensors=("S2-L1C",), statistics=("EuroSAT",))

WEIGHTS: dict[str, SmartiesWeights] = {
    w.name: w
    for w in [
        SmartiesWeights(
            "smarties-v1-vitb",
            _ARCH_OF_WEIGHTS["smarties-v1-vitb"],
            "gsumbul/SMARTIES-v1-ViT-B",
            "smarties-v1-vitb.safetensors",
            description="SMARTIES ViT-B/16 encoder pretrained on BigEarthNet S2/S1, fMoW-S2 and fMoW-RGB",
        ),
        SmartiesWeights(
            "smarties-v1-vitl",
            _ARCH_OF_WEIGHTS["smarties-v1-vitl"],
            "gsumbul/SMARTIES-v1-ViT-L",
            "smarties-v1-vitl.safetensors",
            description="SMARTIES ViT-L/16 encoder pretrained on BigEarthNet S2/S1, fMoW-S2 and fMoW-RGB",
        ),
        *(
            w
            for size in ("vitb", "vitl")
            for w in (
                _finetuned(size, "bigearthnets2-finetune", **_BEN_S2),
                _finetuned(size, "bigearthnets1-linprobe", **_BEN_S1),
                _finetuned(size, "bigearthnetmm-linprobe", **_BEN_MM),
                _finetuned(size, "eurosat-finetune", **_EUROSAT),
                _finetuned(size, "eurosat-linprobe", head_type="linprobe", **_EUROSAT),
            )
        ),
        _finetuned("vitl", "resisc45-finetune", num_classes=45, sensors=("RGB",), statistics=("RESISC45",)),
        _finetuned(
            "vitb", "dfc2020-linprobe", num_classes=8, head_type="conv", sensors=("S2-L2A",), statistics=("DFC2020",)
        ),
    ]
}


def get_weights(name: str) -> SmartiesWeights:
    """Declared weights by tag; unknown tags raise ``KeyError`` listing the known ones."""
    if name not in WEIGHTS:
        raise KeyError(f"Unknown SMARTIES weights {name!r}. Known: {', '.join(WEIGHTS)}.")
    return WEIGHTS[name]


def default_weights_for(arch: str) -> SmartiesWeights:
    """The released encoder weights of a factory (``pretrained=True`` without a path)."""
    cfg = default_cfgs.get(arch)
    if cfg is None or cfg.weights is None:
        raise WeightsUnavailableError(
            f"No released weights exist for {arch}; pass ckpt_path=... (a local checkpoint) or pretrained=False."
        )
    return WEIGHTS[cfg.weights]


def _how_to_fetch(w: SmartiesWeights, revision: str | None) -> str:
    rev = f" --revision {revision}" if revision else ""
    return (
        f"On a machine with internet access run `hf download {w.repo_id} {w.filename}{rev} --local-dir DIR`, "
        f"copy DIR/{w.filename} here and pass its path (ckpt_path=... / backbone_ckpt_path: ... / --weights ...)."
    )


def _cached_commit(repo_id: str, filename: str, cache_dir: str | Path | None = None) -> str | None:
    """The newest commit of ``repo_id`` whose ``filename`` is in the Hugging Face cache, if any."""
    from huggingface_hub import scan_cache_dir

    try:
        repos = scan_cache_dir(cache_dir or hf_constants.HF_HUB_CACHE).repos  # the cache hf_hub_download uses
    except Exception:  # noqa: BLE001 (no cache directory yet, unreadable cache: nothing cached)
        return None
    revisions = [
        rev
        for repo in repos
        if repo.repo_id == repo_id and repo.repo_type == "model"
        for rev in repo.revisions
        if any(f.file_name == filename for f in rev.files)
    ]
    return max(revisions, key=lambda r: r.last_modified).commit_hash if revisions else None


def is_pinned(w: SmartiesWeights, revision: str | None = None) -> bool:
    """Whether the commit of ``w`` is fixed by the caller (``revision``) or by this package (``w.revision``)."""
    return revision is not None or w.revision is not None


def resolve_revision(w: SmartiesWeights, revision: str | None = None, cache_dir: str | Path | None = None) -> str:
    """The Hub commit (or ref) to download ``w`` at.

    A ``revision`` given by the caller wins, then the one declared in :data:`WEIGHTS`. Without either, the repo's
    current commit is resolved through the Hub API (``HF_ENDPOINT`` honoured) and logged as not pinned, so a run
    downloads and records one exact commit, never a moving ``main``. Offline (``HF_HUB_OFFLINE``) or with the Hub
    unreachable, the newest commit already in the Hub cache is used (logged).

    Raises:
        WeightsUnavailableError: no pin, the Hub cannot be asked, and nothing is cached (the message says how to
            get the file).
    """
    if revision is not None:
        return revision
    if w.revision is not None:
        return w.revision
    problem: Exception | None = None
    if not hf_constants.HF_HUB_OFFLINE:
        from huggingface_hub import HfApi

        try:
            sha = HfApi().model_info(w.repo_id).sha
        except Exception as err:  # noqa: BLE001 (network, auth, missing repo: all end in the same advice)
            problem = err
        else:
            if sha:
                log.warning("%s at commit %s (not pinned by this package)", w.repo_id, sha)
                return sha
            problem = ValueError("the Hub answered without a commit")
    cached = _cached_commit(w.repo_id, w.filename, cache_dir)
    if cached is not None:
        log.warning("%s at cached commit %s (offline; not pinned by this package)", w.repo_id, cached)
        return cached
    if problem is None:
        why = "HF_HUB_OFFLINE is set"
    else:
        first_line = str(problem).splitlines()[0] if str(problem) else ""
        why = f"the Hub could not be asked: {type(problem).__name__}: {first_line}"
    raise WeightsUnavailableError(
        f"Could not resolve the current commit of {w.repo_id} on the Hugging Face Hub ({why}) and {w.filename} is "
        f"not in the Hub cache. Pass a revision (a commit sha) or a local file. {_how_to_fetch(w, None)}"
    ) from problem


def _download(w: SmartiesWeights, revision: str | None, cache_dir: str | Path | None) -> tuple[Path, str]:
    """Fetch (or reuse from the Hub cache) ``w`` at ``revision``, verified: ``(path, sha256)``."""
    revision = resolve_revision(w, revision, cache_dir)
    try:
        path = Path(hf_hub_download(w.repo_id, w.filename, revision=revision, cache_dir=cache_dir))
    except (LocalEntryNotFoundError, OfflineModeIsEnabled, HfHubHTTPError, OSError) as err:
        offline = " (HF_HUB_OFFLINE is set)" if hf_constants.HF_HUB_OFFLINE else ""
        raise WeightsUnavailableError(
            f"Could not get {w.filename} from the Hugging Face Hub repo {w.repo_id} at revision {revision}{offline} and "
            f"it is not in the Hub cache: {type(err).__name__}: {err}. {_how_to_fetch(w, revision)}"
        ) from err
    return path, verify_hub_file(w, revision, path)


_SHA256 = re.compile(r"[0-9a-f]{64}")


def _hub_sha256(w: SmartiesWeights, revision: str) -> str | None:
    """The sha256 the Hub lists for ``w`` at ``revision`` (an LFS file's ETag), or ``None`` when it cannot be asked
    (offline, unreachable) or the file is not stored in LFS (its ETag is then a git blob id)."""
    if hf_constants.HF_HUB_OFFLINE:
        return None
    from huggingface_hub import get_hf_file_metadata, hf_hub_url

    try:
        etag = get_hf_file_metadata(hf_hub_url(w.repo_id, w.filename, revision=revision)).etag
    except Exception as err:  # noqa: BLE001 (network, auth, proxy: the ETag recorded in the cache is used instead)
        log.warning("Could not ask the Hub for the sha256 of %s/%s: %s", w.repo_id, w.filename, err)
        return None
    return etag if etag and _SHA256.fullmatch(etag) else None


def verify_hub_file(w: SmartiesWeights, revision: str, path: str | Path) -> str:
    """Check a downloaded or cached Hub file against the sha256 it should have; returns its sha256.

    The expected hash is the one declared in :data:`WEIGHTS`, else the one the Hub lists (the LFS ETag,
    :func:`huggingface_hub.get_hf_file_metadata`), else, offline, the ETag the Hub gave at download time (the
    cache stores each file as ``blobs/<sha256>``). So a download altered on the way and a cached file corrupted or
    replaced later are both refused, every time the file is used.

    Raises:
        CheckpointError: the file's sha256 differs; the message names the cached file to delete.
    """
    path = Path(path)
    blob = path.resolve()  # the snapshot entry links to blobs/<ETag>; without symlinks it is the file itself
    expected, source = w.sha256, "declared by this package"
    if expected is None:
        expected, source = _hub_sha256(w, revision), "listed by the Hub"
    if expected is None and blob != path and _SHA256.fullmatch(blob.name):
        expected, source = blob.name, "the Hub's ETag when it was downloaded"
    digest = file_sha256(path)
    if expected is None:
        log.warning("%s/%s at %s: the Hub lists no sha256 for it, not verified (sha256 %s)", w.repo_id, w.filename,
                    revision, digest)  # fmt: skip
    elif digest != expected:
        raise CheckpointError(
            f"{blob} ({w.repo_id}/{w.filename} at {revision}) has sha256 {digest}, expected {expected} ({source}): "
            f"the download was altered or the cached file is corrupt. Delete {blob} and run again to download it "
            f"afresh."
        )
    return digest


@dataclass(frozen=True)
class HubFile:
    """A released weights file fetched from the Hub, as recorded in benchmark results."""

    repo_id: str
    revision: str  # the commit downloaded
    pinned: bool  # fixed by the caller or this package (else: the repo's current commit when it was resolved)
    sha256: str
    path: Path

    def record(self) -> dict[str, Any]:
        """JSON-able provenance: ``{"repo_id", "revision", "pinned", "sha256", "path"}``."""
        return {"repo_id": self.repo_id, "revision": self.revision, "pinned": self.pinned, "sha256": self.sha256,
                "path": str(self.path)}


def fetch_hub_weights(
    source: str | SmartiesWeights, revision: str | None = None, cache_dir: str | Path | None = None
) -> HubFile:
    """Download a declared weights file (tag or :class:`SmartiesWeights`) at one resolved commit.

    The commit is :func:`resolve_revision`'s; the returned :class:`HubFile` carries it, whether it was pinned, and
    the file's sha256 (checked against the declared one when there is one).

    Raises:
        KeyError: an unknown tag.
        WeightsUnavailableError, CheckpointError: as :func:`checkpoint_path`.
    """
    w = get_weights(source) if isinstance(source, str) else source
    commit = resolve_revision(w, revision, cache_dir)
    path, digest = _download(w, commit, cache_dir)
    return HubFile(w.repo_id, commit, is_pinned(w, revision), digest, path)


def checkpoint_path(
    source: str | Path | SmartiesWeights, revision: str | None = None, cache_dir: str | Path | None = None
) -> Path:
    """Where a checkpoint is: an existing local file first, else a declared weights tag fetched from the Hub.

    Args:
        source: a file path, a weights tag (``"smarties-v1-vitb"``) or a :class:`SmartiesWeights`.
        revision: Hub commit to use instead of the declared one.
        cache_dir: Hugging Face cache directory (default: the Hub's own, honouring ``HF_HOME``/``HF_HUB_CACHE``).

    Raises:
        WeightsUnavailableError: a path that does not exist, or Hub weights that cannot be obtained.
    """
    if isinstance(source, SmartiesWeights):
        return _download(source, revision, cache_dir)[0]
    refuse_url(source, "weights")
    path = Path(source).expanduser()
    if path.is_file():
        return path
    if isinstance(source, str) and source in WEIGHTS:
        return _download(WEIGHTS[source], revision, cache_dir)[0]
    if path.is_dir():
        raise WeightsUnavailableError(f"{path} is a directory; pass the checkpoint file inside it.")
    raise WeightsUnavailableError(
        f"Checkpoint {str(source)!r} not found: no such file (cwd {Path.cwd()}), and it is not a known weights tag "
        f"({', '.join(WEIGHTS)})."
    )


_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


def refuse_url(source: Any, what: str = "checkpoint") -> None:
    """Refuse a URL (``http(s)://``, ``s3://``, ...) where a local file is expected.

    A checkpoint read straight from the network is one nobody checked, and a pickle can carry code: only local
    files are read (as tensors and plain values), and released weights are fetched by tag and verified.

    Raises:
        CheckpointError: ``source`` is a URL; the message says what to do instead.
    """
    if isinstance(source, str) and _URL.match(source):
        raise CheckpointError(
            f"{source}: {what} files are not read from URLs (nothing checks what the network sends, and a pickled "
            f"file can carry code). Download it, check it, and pass the local file; released SMARTIES weights are "
            f"fetched and verified by tag ({', '.join(list(WEIGHTS)[:2])}, ...)."
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


_PREFIXES = ("module.", "model.", "encoder.", "backbone.", "net.")
_MAE_ONLY = re.compile(r"^(mask_token|decoder_\w+)(\.|$)")


def checkpoint_filter_fn(state_dict: Mapping[str, torch.Tensor], model: nn.Module) -> dict[str, torch.Tensor]:
    """Adapt a foreign SMARTIES state dict to ``model``: strip wrapper prefixes (``model.``, ``encoder.``, ...),
    drop MAE-only keys (decoder, mask token) and resample ``pos_embed`` to the model's grid."""
    own = model.state_dict()
    out = {}
    for key, value in state_dict.items():
        while key not in own and key.startswith(_PREFIXES):
            key = key.split(".", 1)[1]
        if _MAE_ONLY.match(key):
            continue
        if key == "pos_embed" and key in own and value.shape != own[key].shape and value.shape[-1] == own[key].shape[-1]:
            old = int(round((value.shape[1] - 1) ** 0.5))
            value = resample_abs_pos_embed(
                value, list(model.grid_size), [old, old], num_prefix_tokens=1, antialias=False
            )
        out[key] = value
    return out


def _describe(dim: int, depth: int) -> str:
    name = variant_of(dim, depth)
    return f"{default_cfgs[name].label} ({name})" if name else f"a ViT with D={dim}, {depth} blocks"


def check_architecture(sd: Mapping[str, torch.Tensor], model: nn.Module, path: Path) -> None:
    """Raise a :class:`CheckpointError` naming both variants when ``sd`` (from ``path``) is not ``model``'s ViT size."""
    if "cls_token" not in sd:
        return
    dim = sd["cls_token"].shape[-1]
    depth = 1 + max((int(m[1]) for k in sd if (m := re.match(r"blocks\.(\d+)\.", k))), default=-1)
    own_dim, own_depth = model.cls_token.shape[-1], len(model.blocks)
    if (dim, depth) != (own_dim, own_depth):
        raise CheckpointError(
            f"{path} holds {_describe(dim, depth)} (D={dim}, {depth} blocks) but the model is "
            f"{_describe(own_dim, own_depth)} (D={own_dim}, {own_depth} blocks): build the matching model."
        )


@dataclass
class LoadReport:
    """What :func:`load_pretrained` did."""

    path: Path
    missing_keys: list[str]
    unexpected_keys: list[str]
    ignored_keys: list[str]


def _head_keys(keys: Any) -> list[str]:
    return [k for k in keys if k.startswith("head.")]


def read_checkpoint(
    source: str | Path | SmartiesWeights,
    model: nn.Module,
    revision: str | None = None,
    cache_dir: str | Path | None = None,
) -> tuple[Path, dict[str, torch.Tensor]]:
    """Locate ``source``, read it and map it onto ``model``'s key layout (:func:`checkpoint_filter_fn`).

    Returns:
        ``(path, state_dict)``, not yet loaded into ``model``.

    Raises:
        WeightsUnavailableError: the file cannot be found or fetched.
        CheckpointError: unreadable file or another ViT size than ``model``'s.
    """
    path = checkpoint_path(source, revision, cache_dir)
    sd = checkpoint_filter_fn(load_state_dict(path), model)
    check_architecture(sd, model, path)
    return path, sd


def load_pretrained(
    model: nn.Module,
    source: str | Path | SmartiesWeights,
    revision: str | None = None,
    strict: bool = True,
    cache_dir: str | Path | None = None,
) -> LoadReport:
    """Load SMARTIES weights into ``model`` with a strict, explained key check.

    A model without a head (``num_classes=0``) takes a fine-tuned file's encoder and ignores its head; a model
    with a head may load an encoder-only file (the head stays initialised, reported as missing). Anything else
    that does not match raises.

    Args:
        model: a :class:`~smarties_terratorch.models.vit.SmartiesViT`.
        source: local path, weights tag or :class:`SmartiesWeights` (see :func:`checkpoint_path`).
        revision: Hub revision override.
        strict: raise on keys the model does not have or needs and the file lacks (beyond the head rules above).
        cache_dir: Hugging Face cache directory.

    Raises:
        WeightsUnavailableError: the file cannot be found or fetched.
        CheckpointError: unreadable file, other architecture, or (strict) incompatible keys.
    """
    path, sd = read_checkpoint(source, model, revision, cache_dir)
    weights = WEIGHTS.get(source) if isinstance(source, str) else source if isinstance(source, SmartiesWeights) else None
    encoder_from_base = "cls_token" not in sd and weights is not None and weights.base is not None
    if encoder_from_base:
        # A head-only fine-tuned file: the encoder comes from the base weights.
        load_pretrained(model, weights.base, revision=None, strict=False, cache_dir=cache_dir)
    own = model.state_dict()
    ignored = []
    if not _head_keys(own) and _head_keys(sd):
        ignored = _head_keys(sd)
        sd = {k: v for k, v in sd.items() if k not in ignored}
    bad_shape = [
        f"{k}: file {tuple(v.shape)} vs model {tuple(own[k].shape)}"
        for k, v in sd.items()
        if k in own and own[k].shape != v.shape
    ]
    if bad_shape:
        raise CheckpointError(f"{path}: tensors with other shapes than the model's: {'; '.join(bad_shape[:8])}")
    result = model.load_state_dict(sd, strict=False)
    # Allowed gaps: a head the file does not have; a fresh fc_norm in global-pool mode (as the release does).
    missing = [] if encoder_from_base else [k for k in result.missing_keys if not k.startswith(("head.", "fc_norm."))]
    unexpected = list(result.unexpected_keys)
    if strict and (missing or unexpected):
        raise CheckpointError(
            f"{path} does not match the model: {len(missing)} missing key(s) {missing[:10]}, {len(unexpected)} "
            f"unexpected key(s) {unexpected[:10]}. Pass strict=False to load what matches."
        )
    if missing or unexpected or ignored:
        log.warning("Loaded %s: missing %s, unexpected %s, ignored %s", path, missing, unexpected, ignored)
    else:
        # One line that confirms what was loaded: the file, its size in tensors and its hash (read once, cached).
        log.info("loaded SMARTIES weights from %s (%d tensors, sha256 %s)", path, len(sd), file_sha256(path)[:16])
    return LoadReport(path, list(result.missing_keys), unexpected, ignored)


def save_weights(
    model: nn.Module, path: str | Path, include_head: bool = False, metadata: Mapping[str, str] | None = None
) -> Path:
    """Save ``model`` in the official layout (unprefixed encoder keys; ``head.*`` only if ``include_head``).

    Written to a temporary file and renamed, so an interrupted save never leaves a half-written checkpoint.
    """
    path = Path(path)
    sd = {
        k: v.detach().to("cpu").contiguous()
        for k, v in model.state_dict().items()
        if include_head or not k.startswith("head.")
    }
    meta = {"format": "pt", "producer": "smarties_terratorch", **(metadata or {})}
    with atomic_path(path) as tmp:
        save_file(sd, tmp, metadata=meta)
    return path
