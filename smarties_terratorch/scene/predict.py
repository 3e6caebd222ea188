"""Class maps of whole scenes from TerraTorch segmentation checkpoints (:func:`predict_scene`).

Checkpoints are read without running code from the file: tensors and plain hyperparameters only
(:func:`smarties_terratorch.checkpoints.read_task_checkpoint`); a file that needs arbitrary unpickling is refused
unless the caller trusts it explicitly.
"""

from __future__ import annotations

import contextlib
import importlib
import inspect
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..io import check_output, grid_of, open_geotiff
from .embed import EmptyOutputError, _scene_name, strip_window
from .tiling import tiled_inference

__all__ = ["load_segmentation_task", "predict_scene", "task_bands", "task_num_classes"]

PathType = str | os.PathLike

#: Modules a checkpoint may name as its task class without ``trust``: importing a module runs its code, so a
#: checkpoint must not choose an arbitrary one.
_TASK_MODULES = ("terratorch.tasks", "smarties_terratorch.")


def _read(path: Path, trust: bool) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    from ..checkpoints import read_task_checkpoint

    return read_task_checkpoint(path, trust=trust)


def _task_class(class_path: str, path: Path, trust: bool) -> type:
    module_name, _, cls_name = class_path.rpartition(".")
    if not trust and not (module_name == "terratorch.tasks" or module_name.startswith(_TASK_MODULES)):
        raise ValueError(
            f"{path} names the task class {class_path!r}, outside TerraTorch's and this package's tasks; "
            f"pass --trust-checkpoint (trust=True) only if you made this file."
        )
    try:
        cls = getattr(importlib.import_module(module_name), cls_name)
    except (ImportError, AttributeError, ValueError):
        raise ValueError(f"{path} names the task class {class_path!r}, which cannot be imported here") from None
    if not isinstance(cls, type):
        raise ValueError(f"{path} names {class_path!r} as its task class, which is not a class")
    return cls


def load_segmentation_task(checkpoint: PathType, *, trust: bool = False, map_location: str = "cpu") -> Any:
    """Rebuild a TerraTorch segmentation task from a Lightning checkpoint written by ``terratorch fit``.

    The checkpoint's hyperparameters (saved by the task, or in ``hparams.yaml`` beside it) name the class
    (``_class_path``) and hold the ``model_args`` given in the config, so the task is re-created exactly as trained
    and its state dict loaded strictly. Nothing in the file is executed: tensors and plain values only.

    Args:
        checkpoint: the ``.ckpt`` file.
        trust: also accept files that need arbitrary unpickling, and task classes outside TerraTorch's and this
            package's tasks. Only for files you made yourself.
        map_location: device the tensors are read onto.

    Raises:
        FileNotFoundError: no such file.
        smarties_terratorch.checkpoints.CheckpointError: a URL (never fetched), a file that needs arbitrary unpickling
            (without ``trust``), or not a checkpoint.
        ValueError: the file holds no task hyperparameters, or names a task class it may not.
    """
    from .. import backbone as _register  # noqa: F401 - registers smarties_vit_* in TerraTorch's registry

    from ..checkpoints import refuse_url

    refuse_url(str(checkpoint))
    path = Path(checkpoint)
    if not path.is_file():
        raise FileNotFoundError(f"Checkpoint {path} not found")
    state_dict, hparams = _read(path, trust)
    if not isinstance(hparams, dict) or not hparams.get("model_args"):
        raise ValueError(
            f"{path} is not a TerraTorch task checkpoint with hyperparameters (use the '<epoch>.ckpt' file "
            f"terratorch fit writes, not the '_state_dict.ckpt' one)"
        )
    cls = _task_class(str(hparams.get("_class_path", "terratorch.tasks.SemanticSegmentationTask")), path, trust)
    # Only the constructor's own arguments (TerraTorch also stores derived entries such as ``task``).
    accepted = set(inspect.signature(cls.__init__).parameters) - {"self"}
    task = cls(**{k: v for k, v in hparams.items() if k in accepted})
    try:
        task.load_state_dict({k: v.to(map_location) for k, v in state_dict.items()}, strict=True)
    except RuntimeError as err:
        first = str(err).splitlines()[0]
        raise ValueError(f"{path}: its weights do not match the task its hyperparameters describe ({first})") from None
    return task.eval()


def task_bands(task: Any) -> list[str] | None:
    """The band names a TerraTorch task was trained on (``model_args.backbone_bands``), if it stored them."""
    args = getattr(task, "hparams", {}).get("model_args", {}) or {}
    bands = args.get("backbone_bands", args.get("backbone_model_bands"))
    return [str(b) for b in bands] if bands is not None else None


def task_num_classes(task: Any) -> int:
    """Number of classes of a TerraTorch segmentation task (or of a bare model with ``num_classes``)."""
    if hasattr(task, "hparams") and "model_args" in task.hparams:
        return int(task.hparams["model_args"]["num_classes"])
    return int(task.num_classes)


def predict_scene(
    reader: Any,
    task: Any,
    out: PathType,
    *,
    normalize: Callable[[torch.Tensor], torch.Tensor] | None = None,
    tile_size: int = 224,
    overlap: int = 32,
    batch_size: int = 8,
    precision: str = "fp32",
    device: torch.device | str = "cpu",
    nodata: int = 255,
    probabilities: PathType | None = None,
    compile: bool = False,
    progress: bool = True,
    overwrite: bool = False,
    allow_empty: bool = False,
) -> dict[str, Any]:
    """Write the class map (uint8, ``nodata`` where the input is invalid) of a segmentation task over a scene.

    Softmax probabilities of overlapping tiles are blended, then argmax. Optionally also writes the blended
    probabilities (float32, one band per class) to ``probabilities``. Files appear only once complete.

    Args:
        reader: the scene (:class:`~smarties_terratorch.io.RasterReader`).
        task: a TerraTorch segmentation task (:func:`load_segmentation_task`) or a model returning logits.
        out: class-map GeoTIFF; must not be one of the reader's files.
        normalize, tile_size, overlap, batch_size, precision, device, compile, progress: as in
            :func:`~smarties_terratorch.scene.embed.embed_scene`.
        nodata: class value for invalid pixels (more classes than this are refused).
        probabilities: optional GeoTIFF of the blended probabilities.
        overwrite: replace existing outputs.
        allow_empty: keep the outputs even when no pixel is valid (otherwise :class:`EmptyOutputError`).

    Returns:
        A summary: output path, pixels per class.
    """
    inputs = list(getattr(reader, "paths", ()))
    check_output(out, inputs, overwrite=overwrite)
    if probabilities is not None:
        check_output(probabilities, [*inputs, out], overwrite=overwrite)
    device = torch.device(device)
    model = task.model if hasattr(task, "model") else task
    model = model.eval().to(device)
    if isinstance(normalize, torch.nn.Module):
        normalize = normalize.to(device)
    num_classes = task_num_classes(task)
    if num_classes >= nodata:
        raise ValueError(f"{num_classes} classes do not fit below the nodata value {nodata}")

    def fn(x: torch.Tensor) -> torch.Tensor:
        y = model(x)
        logits = y.output if hasattr(y, "output") else y
        return logits.float().softmax(dim=1)

    run = torch.compile(fn) if compile else fn
    counts = np.zeros(num_classes, dtype=np.int64)
    grid = grid_of(reader, 1)
    with contextlib.ExitStack() as stack:
        dst = stack.enter_context(open_geotiff(out, count=1, dtype="uint8", nodata=nodata, **grid))
        prob = None
        if probabilities is not None:
            prob = stack.enter_context(
                open_geotiff(probabilities, count=num_classes, dtype="float32", nodata=float("nan"), **grid)
            )
        strips = tiled_inference(
            reader, run, out_channels=num_classes, tile_size=tile_size, overlap=overlap, batch_size=batch_size,
            normalize=normalize, precision=precision, device=device, progress=progress,
        )  # fmt: skip
        for strip in strips:
            keep = strip.valid >= 1.0 - 1e-6  # a pixel is either valid or not
            classes = strip.values.argmax(axis=0).astype(np.uint8)
            classes[~keep] = nodata
            counts += np.bincount(classes[keep], minlength=num_classes)[:num_classes]
            dst.write(classes[None], window=strip_window(strip))
            if prob is not None:
                strip.values[:, ~keep] = np.nan
                prob.write(strip.values, window=strip_window(strip))
        if counts.sum() == 0 and not allow_empty:
            # Raised inside the writers: their temporary files are discarded, earlier outputs stay as they were.
            raise EmptyOutputError(
                f"{_scene_name(reader)}: no valid pixel (the scene is nodata everywhere, or its band files do not "
                f"cover it); {out} was not written. Check the nodata value and the band files, or pass "
                f"--allow-empty to keep an all-nodata output."
            )
    summary: dict[str, Any] = {"out": str(out), "class_pixels": counts.tolist(), "device": str(device),
                               "precision": precision}  # fmt: skip
    if probabilities is not None:
        summary["probabilities"] = str(probabilities)
    return summary
