"""Loading SMARTIES weights into a model, the one path every loader takes (:func:`load_pretrained`: the timm
factories, the TerraTorch backbone, the PANGAEA encoder, MAE, the scene tools), and saving them in the official
layout (:func:`save_weights`).

The official files hold the encoder state dict unprefixed (``cls_token``, ``pos_embed``, ``blocks.*``,
``norm.*``, ``spectrum_projection.spectrum_embeds.{0..16}.proj.*``) and, for fine-tuned files, a head
(``head.*``). A source is a local file first, else a declared weights tag fetched from the Hub at one resolved
commit (:mod:`~smarties_terratorch.hub`); files are read without running code (:mod:`~smarties_terratorch.
checkpoints`). What a foreign state dict needs to fit a model (wrapper prefixes, resampled position embedding) and
which architecture it holds is the model's business: its module passes ``filter_fn``/``check_fn`` (for the SMARTIES
ViT, :func:`smarties_terratorch.models.vit.checkpoint_filter_fn` and
:func:`~smarties_terratorch.models.vit.check_architecture`), as timm's factories pass ``pretrained_filter_fn``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file
from torch import nn

from .checkpoints import CheckpointError, WeightsUnavailableError, load_state_dict, refuse_url
from .fetch import file_sha256
from .hub import download_weights
from .io import atomic_path
from .weights import WEIGHTS, SmartiesWeights

__all__ = ["LoadReport", "checkpoint_path", "load_pretrained", "read_checkpoint", "save_weights"]

log = logging.getLogger(__name__)

#: ``filter_fn(state_dict, model)``: a foreign state dict mapped onto ``model``'s key layout.
FilterFn = Callable[[Mapping[str, torch.Tensor], nn.Module], dict[str, torch.Tensor]]
#: ``check_fn(state_dict, model, path)``: raises :class:`~smarties_terratorch.checkpoints.CheckpointError` when
#: the (filtered) state dict from ``path`` is for another architecture than ``model``'s.
CheckFn = Callable[[Mapping[str, torch.Tensor], nn.Module, Path], None]


def _model_fns(model: nn.Module, filter_fn: FilterFn | None, check_fn: CheckFn | None) -> tuple[Any, Any]:
    """``filter_fn`` and ``check_fn``, defaulting to the model's own (``pretrained_filter_fn``/``_check_fn``)."""
    return (
        filter_fn if filter_fn is not None else getattr(model, "pretrained_filter_fn", None),
        check_fn if check_fn is not None else getattr(model, "pretrained_check_fn", None),
    )


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
        return download_weights(source, revision, cache_dir)[0]
    refuse_url(source, "weights")
    path = Path(source).expanduser()
    if path.is_file():
        return path
    if isinstance(source, str) and source in WEIGHTS:
        return download_weights(WEIGHTS[source], revision, cache_dir)[0]
    if path.is_dir():
        raise WeightsUnavailableError(f"{path} is a directory; pass the checkpoint file inside it.")
    raise WeightsUnavailableError(
        f"Checkpoint {str(source)!r} not found: no such file (cwd {Path.cwd()}), and it is not a known weights tag "
        f"({', '.join(WEIGHTS)})."
    )


@dataclass
class LoadReport:
    """What :func:`load_pretrained` did.

    Attributes:
        path: the file loaded.
        missing_keys: the model's keys the file did not fill (shape-mismatched ones are in ``mismatched`` instead).
        unexpected_keys: the file's keys the model does not have.
        ignored_keys: the file's head, left out because the model has none.
        mismatched: keys left out because their shapes differ (``skip_mismatched``): ``{key: (model, file)}``.
        loaded_keys: the keys loaded into the model.
    """

    path: Path
    missing_keys: list[str]
    unexpected_keys: list[str]
    ignored_keys: list[str]
    mismatched: dict[str, tuple[torch.Size, torch.Size]] = field(default_factory=dict)
    loaded_keys: list[str] = field(default_factory=list)


def _head_keys(keys: Any) -> list[str]:
    return [k for k in keys if k.startswith("head.")]


def read_checkpoint(
    source: str | Path | SmartiesWeights,
    model: nn.Module,
    *,
    filter_fn: FilterFn | None = None,
    check_fn: CheckFn | None = None,
    revision: str | None = None,
    cache_dir: str | Path | None = None,
) -> tuple[Path, dict[str, torch.Tensor]]:
    """Locate ``source`` (:func:`checkpoint_path`), read it safely and map it onto ``model``'s key layout.

    Args:
        source: local path, weights tag or :class:`SmartiesWeights`.
        model: the model the state dict is for.
        filter_fn: maps the file's state dict onto ``model`` (default: ``model.pretrained_filter_fn``, if any).
        check_fn: refuses a file of another architecture (default: ``model.pretrained_check_fn``, if any).
        revision: Hub revision override.
        cache_dir: Hugging Face cache directory.

    Returns:
        ``(path, state_dict)``, not yet loaded into ``model``.

    Raises:
        WeightsUnavailableError: the file cannot be found or fetched.
        CheckpointError: unreadable file or another architecture than ``model``'s.
    """
    filter_fn, check_fn = _model_fns(model, filter_fn, check_fn)
    path = checkpoint_path(source, revision, cache_dir)
    sd = load_state_dict(path)
    if filter_fn is not None:
        sd = filter_fn(sd, model)
    if check_fn is not None:
        check_fn(sd, model, path)
    return path, sd


def load_pretrained(
    model: nn.Module,
    source: str | Path | SmartiesWeights,
    *,
    filter_fn: FilterFn | None = None,
    check_fn: CheckFn | None = None,
    revision: str | None = None,
    strict: bool = True,
    skip_mismatched: bool = False,
    cache_dir: str | Path | None = None,
) -> LoadReport:
    """Load SMARTIES weights into ``model`` with a strict, explained key check.

    A model without a head (``num_classes=0``) takes a fine-tuned file's encoder and ignores its head; a model
    with a head may load an encoder-only file (the head stays initialised, reported as missing). Anything else
    that does not match raises.

    Args:
        model: a :class:`~smarties_terratorch.models.vit.SmartiesViT`, or any module with ``filter_fn``/``check_fn``.
        source: local path, weights tag or :class:`SmartiesWeights` (see :func:`checkpoint_path`).
        filter_fn: maps the file's state dict onto ``model`` (default: ``model.pretrained_filter_fn``, if any).
        check_fn: refuses a file of another architecture (default: ``model.pretrained_check_fn``, if any).
        revision: Hub revision override.
        strict: raise on keys the model does not have or needs and the file lacks (beyond the head rules above).
        skip_mismatched: leave out tensors whose shapes differ from the model's (reported in
            :attr:`LoadReport.mismatched`) instead of raising; for hosts that report them themselves (PANGAEA).
        cache_dir: Hugging Face cache directory.

    Raises:
        WeightsUnavailableError: the file cannot be found or fetched.
        CheckpointError: unreadable file, other architecture, or (strict) incompatible keys.
    """
    filter_fn, check_fn = _model_fns(model, filter_fn, check_fn)
    path, sd = read_checkpoint(
        source, model, filter_fn=filter_fn, check_fn=check_fn, revision=revision, cache_dir=cache_dir
    )
    weights = WEIGHTS.get(source) if isinstance(source, str) else source if isinstance(source, SmartiesWeights) else None
    encoder_from_base = "cls_token" not in sd and weights is not None and weights.base is not None
    if encoder_from_base:
        # A head-only fine-tuned file: the encoder comes from the base weights.
        load_pretrained(model, weights.base, filter_fn=filter_fn, check_fn=check_fn, strict=False, cache_dir=cache_dir)
    own = model.state_dict()
    ignored = []
    if not _head_keys(own) and _head_keys(sd):
        ignored = _head_keys(sd)
        sd = {k: v for k, v in sd.items() if k not in ignored}
    mismatched = {k: (own[k].shape, v.shape) for k, v in sd.items() if k in own and own[k].shape != v.shape}
    if mismatched and not skip_mismatched:
        bad_shape = [f"{k}: file {tuple(f)} vs model {tuple(m)}" for k, (m, f) in mismatched.items()]
        raise CheckpointError(f"{path}: tensors with other shapes than the model's: {'; '.join(bad_shape[:8])}")
    sd = {k: v for k, v in sd.items() if k not in mismatched}
    result = model.load_state_dict(sd, strict=False)
    # Allowed gaps: a head the file does not have; a fresh fc_norm in global-pool mode (as the release does).
    missing = [] if encoder_from_base else [k for k in result.missing_keys if not k.startswith(("head.", "fc_norm."))]
    missing = [k for k in missing if k not in mismatched]
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
    loaded = [k for k in sd if k in own]
    missing_keys = [k for k in result.missing_keys if k not in mismatched]
    return LoadReport(path, missing_keys, unexpected, ignored, mismatched, loaded)


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
