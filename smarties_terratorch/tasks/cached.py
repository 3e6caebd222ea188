"""Cached-feature probes: encode every image once, then train / evaluate the head on the stored features.

A linear probe or a kNN evaluation with a frozen encoder and no training augmentation feeds the head the same
feature for an image at every epoch, so re-running the encoder each epoch only costs time. Here the feature the
head reads (the output of the model's neck, e.g. the CLS token after the final norm) is computed once per split
with the model's own modules, stored as safetensors under a key made of the weights' identity, the bands and the
data module's preprocessing, and the unchanged Lightning task then trains and validates on those tensors:

* :func:`prepare_cached_features` encodes (or reuses) the splits and returns a :class:`CachedFeatureDataModule`;
* :func:`features_as_input` makes the task's encoder and neck pass the cached features through for the duration
  of ``fit`` / ``validate``. Only their ``forward`` is shadowed, so checkpoints keep every weight and name.

Encoding runs in eval mode, without gradients and under a forked RNG, so the shuffling order of the training loader
(drawn from the global RNG) is the one the uncached run would have had: with the same seed, cached and uncached runs
see the same batches and give the same metric up to floating-point summation order.

Not for protocols whose features change between passes (training augmentation, fine-tuning, BigEarthNet-MM's random
token mixing, which is random at evaluation too): :func:`cacheable` says why a task cannot be cached.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

from ..datamodules.base import SmartiesDataModule
from ..io import atomic_path

__all__ = [
    "CachedFeatureDataModule",
    "FeatureDataset",
    "cache_key",
    "cacheable",
    "encode_loader",
    "feature_holder",
    "features_as_input",
    "intra_op_threads",
    "prepare_cached_features",
    "state_sha256",
]

log = logging.getLogger(__name__)

#: Splits the loops read, and the loader that supplies each one's images (never shuffled when encoding).
_SPLITS = {"train": "train_dataloader", "val": "val_dataloader", "test": "test_dataloader"}


def feature_holder(task: nn.Module) -> nn.Module:
    """The module holding the ``encoder`` and ``neck`` of ``task`` (TerraTorch model or the kNN task itself).

    Raises:
        TypeError: ``task`` has no encoder and neck.
    """
    model = getattr(task, "model", None)
    for holder in (model, task):
        if holder is not None and isinstance(getattr(holder, "encoder", None), nn.Module):
            if isinstance(getattr(holder, "neck", None), nn.Module):
                return holder
    raise TypeError(f"{type(task).__name__}: no encoder + neck to cache features from")


def cacheable(task: nn.Module, datamodule: Any) -> str | None:
    """Why the features of ``task`` on ``datamodule`` cannot be cached, or ``None`` if they can."""
    try:
        holder = feature_holder(task)
    except TypeError as err:
        return str(err)
    moving = sum(p.numel() for p in holder.encoder.parameters() if p.requires_grad)
    if moving:
        return f"the encoder has {moving:,} trainable parameters (fine-tuning)"
    if getattr(datamodule, "augment", False):
        return "the data module augments training samples (augment: true)"
    fusion = getattr(holder.encoder, "fusion", None) or getattr(holder.encoder, "modality_fusion", None)
    if isinstance(fusion, str) and "mixup" in fusion:
        return f"{fusion} fusion mixes tokens at random on every pass"
    return None


def state_sha256(module: nn.Module) -> str:
    """sha256 of a module's state dict (names, dtypes, shapes and values): the identity of unnamed weights."""
    digest = hashlib.sha256()
    for name, tensor in sorted(module.state_dict().items()):
        digest.update(f"{name}:{tensor.dtype}:{tuple(tensor.shape)}".encode())
        digest.update(tensor.detach().cpu().contiguous().view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def cache_key(weights_sha256: str, bands: Any, preprocessing: Mapping[str, Any], split: str) -> str:
    """Cache key of one split's features: weights identity, input bands, data preprocessing (the data module's
    arguments: files, split lists, sizes, statistics) and the split name."""
    blob = json.dumps(
        {"weights": weights_sha256, "bands": bands, "preprocessing": preprocessing, "split": split},
        sort_keys=True,
        default=str,
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:32]


def _to(x: Any, device: torch.device) -> Any:
    return {k: v.to(device) for k, v in x.items()} if isinstance(x, dict) else x.to(device)


@torch.no_grad()
def encode_loader(
    task: nn.Module,
    loader: DataLoader,
    desc: str = "encoding",
    device: torch.device | str | None = None,
    precision: Callable[[], AbstractContextManager[Any]] = nullcontext,
) -> tuple[Tensor, Tensor]:
    """``(features, labels)`` of every batch of ``loader``: the neck's output while the task runs its own forward.

    Eval mode, no gradients, global RNG forked (the caller's shuffling stays as if nothing ran). ``device``: where
    to run (the task is moved there; default: where it is); ``precision``: the forward context of the run's
    precision (e.g. Lightning's ``trainer.precision_plugin.forward_context`` for fp16 autocast), so the features are
    those the uncached run computes.
    """
    holder = feature_holder(task)
    captured: list[Tensor] = []

    def grab(_module: nn.Module, _inputs: Any, output: Any) -> None:
        feats = output[0] if isinstance(output, list | tuple) else output
        if isinstance(output, list | tuple) and len(output) != 1:
            raise ValueError(f"the neck returns {len(output)} feature maps; a cached probe reads exactly one")
        captured.append(feats.detach().float().cpu())

    if device is not None:
        task.to(device)
    device = next(task.parameters()).device
    was_training = task.training
    labels: list[Tensor] = []
    handle = holder.neck.register_forward_hook(grab)
    task.eval()
    try:
        with torch.random.fork_rng(devices=[]):  # iterating a DataLoader draws a seed from the global RNG
            for batch in tqdm(loader, desc=desc, leave=False, dynamic_ncols=True):
                with precision():
                    task(_to(batch["image"], device))
                labels.append(batch["label"].cpu())
    finally:
        handle.remove()
        task.train(was_training)
    if not captured:
        raise ValueError(f"{desc}: the loader yielded no batches")
    return torch.cat(captured), torch.cat(labels)


class FeatureDataset(Dataset):
    """``{"image": feature, "label": label}`` samples from stored tensors (same order as the encoded split)."""

    def __init__(self, features: Tensor, labels: Tensor) -> None:
        if features.shape[0] != labels.shape[0]:
            raise ValueError(f"{features.shape[0]} features but {labels.shape[0]} labels")
        self.features, self.labels = features, labels

    def __len__(self) -> int:
        return self.features.shape[0]

    def __getitem__(self, index: int) -> dict[str, Tensor]:
        return {"image": self.features[index], "label": self.labels[index]}


class CachedFeatureDataModule(SmartiesDataModule):
    """Loaders over cached features with the batching of the data module they replace.

    ``batch_size``, ``drop_last`` and training-set shuffling are those of ``source``; ``num_classes`` and
    ``multilabel`` are passed on for the task's consistency checks. No workers: the samples are in memory.
    """

    def __init__(self, splits: Mapping[str, tuple[Tensor, Tensor]], source: Any) -> None:
        super().__init__(batch_size=int(source.batch_size), drop_last=bool(getattr(source, "drop_last", False)))
        self.datasets = {name: FeatureDataset(*tensors) for name, tensors in splits.items()}
        self.num_classes = getattr(source, "num_classes", None)
        self.multilabel = getattr(source, "multilabel", None)

    def setup(self, stage: str | None = None) -> None:
        pass  # every split there is was encoded up front; a missing one is reported when its loader is asked for

    def build_dataset(self, split: str) -> FeatureDataset:
        raise KeyError(f"no cached features for the {split} split (encoded: {sorted(self.datasets)})")


def _unshuffled(loader: DataLoader) -> DataLoader:
    """The same dataset and batch size, in order, every sample kept (the train loader shuffles and drops)."""
    return DataLoader(loader.dataset, batch_size=loader.batch_size, shuffle=False, num_workers=loader.num_workers)


def prepare_cached_features(
    task: nn.Module,
    datamodule: Any,
    folder: str | Path,
    weights_sha256: str | None,
    preprocessing: Mapping[str, Any],
    bands: Any = None,
    splits: tuple[str, ...] = ("train", "val"),
    device: torch.device | str | None = None,
    precision: Callable[[], AbstractContextManager[Any]] = nullcontext,
) -> tuple[CachedFeatureDataModule, dict[str, Any]]:
    """Encode ``splits`` of ``datamodule`` once (or load them from ``folder``) and return loaders over them.

    Args:
        task: the built task (TerraTorch classification task or :class:`~.knn.SmartiesKNNTask`).
        datamodule: its data module (its loaders give the images; its batching is kept).
        folder: where the ``<key>.safetensors`` files live (written atomically; a damaged one is encoded again).
        weights_sha256: sha256 of the weights file; ``None`` = hash of the encoder's state (random initialisation).
        preprocessing: the data module's arguments (anything that changes the pixels or the sample list).
        bands: the encoder's input bands.
        splits: the splits the run reads.
        device, precision: where and in which precision to encode (:func:`encode_loader`).

    Returns:
        The cached data module and a record ``{split: {"key", "file", "samples", "reused"}}``.
    """
    folder = Path(folder)
    holder = feature_holder(task)
    weights_id = weights_sha256 or f"state:{state_sha256(holder.encoder)}"
    datamodule.setup("fit" if "train" in splits else "validate")
    tensors: dict[str, tuple[Tensor, Tensor]] = {}
    record: dict[str, Any] = {}
    for split in splits:
        key = cache_key(weights_id, bands, preprocessing, split)
        path = folder / f"{split}-{key}.safetensors"
        stored = _read_cached(path) if path.is_file() else None
        reused = stored is not None
        if stored is not None:
            feats, labels = stored
        else:
            loader = _unshuffled(getattr(datamodule, _SPLITS[split])())
            feats, labels = encode_loader(task, loader, f"encoding {split} once", device, precision)
            with atomic_path(path) as tmp:
                save_file({"features": feats.contiguous(), "labels": labels.contiguous()}, str(tmp))
        tensors[split] = (feats, labels)
        record[split] = {"key": key, "file": str(path), "samples": int(feats.shape[0]), "reused": reused}
    return CachedFeatureDataModule(tensors, datamodule), record


def _read_cached(path: Path) -> tuple[Tensor, Tensor] | None:
    """The ``(features, labels)`` stored at ``path``, or ``None`` (logged, naming the file) when the file is damaged:
    cut short, not safetensors, without both tensors, or with counts that differ. The caller then encodes the split
    again and replaces the file."""
    try:
        stored = load_file(path)
        feats, labels = stored["features"], stored["labels"]
        if feats.ndim < 1 or labels.ndim < 1 or feats.shape[0] != labels.shape[0] or feats.shape[0] == 0:
            raise ValueError(f"{tuple(feats.shape)} features for {tuple(labels.shape)} labels")
    except (SafetensorError, OSError, KeyError, ValueError) as err:
        log.warning("Feature cache %s is damaged (%s: %s); discarding it and encoding the split again.", path,
                    type(err).__name__, " ".join(str(err).split())[:200])  # fmt: skip
        return None
    return feats, labels


def _pass_features(x: Any, *args: Any, **kwargs: Any) -> list[Any]:
    return [x]


def _pass_list(features: Any, *args: Any, **kwargs: Any) -> Any:
    return features


@contextmanager
def features_as_input(task: nn.Module) -> Iterator[None]:
    """Within the block, the task's encoder returns its input as its one feature and the neck passes it on.

    The modules stay in place (state dict, checkpoints and devices unchanged); only their ``forward`` is shadowed
    by an instance attribute, removed on exit.
    """
    holder = feature_holder(task)
    holder.encoder.forward = _pass_features
    holder.neck.forward = _pass_list
    try:
        yield
    finally:
        del holder.encoder.forward
        del holder.neck.forward


@contextmanager
def intra_op_threads(threads: int = 1) -> Iterator[None]:
    """Within the block, torch runs CPU ops on ``threads`` threads (restored on exit).

    A probe head on cached features runs tensors of a few thousand values, far too small for intra-op parallelism:
    on a CPU, the thread pool's synchronisation then costs more than the work (measured: ``BatchNorm1d`` on a
    ``[5, 192]`` batch took 8.6 ms on two threads of a loaded 2-core machine, 0.11 ms on one).
    """
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)
