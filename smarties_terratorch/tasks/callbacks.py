"""Lightning callbacks for segmentation runs: a per-class IoU report and a prediction figure.

:class:`SegmentationReport` is what ``configs/demo.yaml`` uses to show its result. Add it to any TerraTorch
segmentation config::

    trainer:
      callbacks:
        - class_path: smarties_terratorch.tasks.callbacks.SegmentationReport
          init_args: {ignore_index: -1}
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import numpy as np
import torch
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.trainer.states import TrainerFn

from ..io import atomic_path, write_text

__all__ = ["SegmentationReport", "format_iou_table", "run_dir"]

# Fixed colours for up to 10 classes (tab10), ignore pixels in black.
_IGNORE_COLOUR = (0.0, 0.0, 0.0)


def run_dir(trainer: pl.Trainer) -> Path:
    """The run's output folder: the logger's version folder when there is one, else ``default_root_dir``."""
    log_dir = None
    try:
        log_dir = trainer.log_dir
    except Exception:  # noqa: BLE001 - some loggers raise instead of returning None
        log_dir = None
    return Path(log_dir if log_dir else trainer.default_root_dir)


def format_iou_table(
    class_names: Sequence[str], iou: Sequence[float], support: Sequence[int], title: str = "Validation IoU"
) -> str:
    """A text table of per-class IoU (``n/a`` for NaN: class absent from truth and prediction) with the mIoU."""
    width = max(12, *(len(n) for n in class_names))
    lines = [title, f"  {'class':<{width}}  {'IoU':>7}  {'pixels':>9}"]
    for name, value, count in zip(class_names, iou, support):
        shown = "    n/a" if math.isnan(value) else f"{value:7.4f}"
        lines.append(f"  {name:<{width}}  {shown}  {int(count):>9d}")
    valid = [v for v in iou if not math.isnan(v)]
    miou = float(np.mean(valid)) if valid else float("nan")
    lines.append(f"  {'mIoU':<{width}}  {miou:7.4f}  (mean over {len(valid)} classes present in truth or prediction)")
    return "\n".join(lines)


class SegmentationReport(Callback):
    """At the end of ``fit`` (and of a stand-alone ``validate``), score the model on the validation set and draw.

    One extra pass over the validation loader with the final weights: predictions are the arg-max of the model's
    output, compared with the masks by torchmetrics' ``MulticlassJaccardIndex(average="none")`` with
    ``ignore_index`` pixels excluded. It prints per-class IoU, mIoU (mean over the classes present in the truth or
    the prediction; a class absent from both is ``n/a``), pixel accuracy and, for scale, the mIoU of predicting
    the most frequent validation class everywhere. It writes ``val_metrics.json`` and a PNG (true-colour image,
    ground truth, prediction) of one validation tile -- the one with the most distinct classes -- into the run
    folder (the logger's ``log_dir``, else ``trainer.default_root_dir``) and prints the PNG path.

    Args:
        class_names: names of the classes; default: the datamodule's ``class_names``, else ``class 0..``.
        ignore_index: mask value to skip; default: the task's ``ignore_index`` hyper-parameter, else the
            datamodule's ``ignore_index``, else none.
        rgb_indices: image channels for red, green, blue; default the datamodule's ``rgb_indices``, else 0, 1, 2.
        class_colors: one matplotlib colour per class; default the datamodule's ``class_colors``, else tab10.
        filename: PNG file name in the run folder.
        max_batches: score at most this many validation batches (default: all; 1 under ``fast_dev_run``).
    """

    def __init__(
        self,
        class_names: Sequence[str] | None = None,
        ignore_index: int | None = None,
        rgb_indices: Sequence[int] | None = None,
        filename: str = "val_prediction.png",
        max_batches: int | None = None,
        class_colors: Sequence[str] | None = None,
    ) -> None:
        super().__init__()
        self.class_names = list(class_names) if class_names is not None else None
        self.ignore_index = ignore_index
        self.rgb_indices = list(rgb_indices) if rgb_indices is not None else None
        self.filename = filename
        self.max_batches = max_batches
        self.class_colors = list(class_colors) if class_colors is not None else None
        #: The last report: ``{"iou": {...}, "miou": float, ...}``; ``None`` before the first one.
        self.metrics: dict[str, Any] | None = None
        #: Path of the last PNG written.
        self.figure_path: Path | None = None

    # -------------------------------------------------------------------------------------------------- hooks
    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.report(trainer, pl_module)

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.state.fn == TrainerFn.VALIDATING and not trainer.sanity_checking:
            self.report(trainer, pl_module)

    # -------------------------------------------------------------------------------------------------- helpers
    def _setting(self, trainer: pl.Trainer, pl_module: pl.LightningModule, name: str) -> Any:
        hparams = getattr(pl_module, "hparams", {}) or {}
        if name in hparams and hparams[name] is not None:
            return hparams[name]
        return getattr(trainer.datamodule, name, None) if trainer.datamodule is not None else None

    def _num_classes(self, trainer: pl.Trainer, pl_module: pl.LightningModule, names: Sequence[str] | None) -> int:
        model_args = (getattr(pl_module, "hparams", {}) or {}).get("model_args") or {}
        for candidate in (
            model_args.get("num_classes"),
            getattr(trainer.datamodule, "num_classes", None),
            len(names) if names else None,
        ):
            if candidate:
                return int(candidate)
        raise ValueError("SegmentationReport: cannot tell the number of classes; pass class_names.")

    def _val_loader(self, trainer: pl.Trainer) -> Any:
        if trainer.datamodule is not None and hasattr(trainer.datamodule, "val_dataloader"):
            return trainer.datamodule.val_dataloader()
        loaders = trainer.val_dataloaders
        return loaders[0] if isinstance(loaders, (list, tuple)) else loaders

    @staticmethod
    def _predict(pl_module: pl.LightningModule, image: torch.Tensor) -> torch.Tensor:
        out = pl_module(image)
        out = getattr(out, "output", out)  # TerraTorch's ModelOutput
        return out.argmax(dim=1)

    # -------------------------------------------------------------------------------------------------- report
    @torch.no_grad()
    def report(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> dict[str, Any]:
        """Score the validation set, print the table, write the JSON and the PNG; returns the metrics."""
        from torchmetrics.classification import MulticlassJaccardIndex

        names = self.class_names or self._setting(trainer, pl_module, "class_names")
        num_classes = self._num_classes(trainer, pl_module, names)
        names = list(names) if names else [f"class {i}" for i in range(num_classes)]
        if len(names) != num_classes:
            raise ValueError(f"SegmentationReport: {len(names)} class names for {num_classes} classes")
        ignore = self.ignore_index if self.ignore_index is not None else self._setting(trainer, pl_module, "ignore_index")
        rgb = self.rgb_indices or list(getattr(trainer.datamodule, "rgb_indices", None) or (0, 1, 2))
        limit = self.max_batches if self.max_batches is not None else (1 if trainer.fast_dev_run else None)

        jaccard = MulticlassJaccardIndex(
            num_classes, average="none", ignore_index=ignore, zero_division=float("nan")
        ).to(pl_module.device)
        support = torch.zeros(num_classes, dtype=torch.long)
        correct = total = 0
        best: tuple[int, np.ndarray, np.ndarray, np.ndarray] | None = None
        was_training = pl_module.training
        pl_module.eval()
        try:
            for i, batch in enumerate(self._val_loader(trainer)):
                if limit is not None and i >= limit:
                    break
                image = batch["image"].to(pl_module.device)
                mask = batch["mask"].to(pl_module.device).long()
                if mask.ndim == 4:
                    mask = mask.squeeze(1)
                pred = self._predict(pl_module, image)
                jaccard.update(pred, mask)
                keep = (mask >= 0) & (mask < num_classes)
                if ignore is not None:
                    keep &= mask != ignore
                support += torch.bincount(mask[keep].cpu(), minlength=num_classes)[:num_classes]
                correct += int((pred[keep] == mask[keep]).sum())
                total += int(keep.sum())
                for j in range(mask.shape[0]):  # the tile with the most distinct classes goes in the figure
                    classes = int(torch.unique(mask[j][keep[j]]).numel())
                    if best is None or classes > best[0]:
                        best = (classes, image[j].cpu().numpy(), mask[j].cpu().numpy(), pred[j].cpu().numpy())
        finally:
            pl_module.train(was_training)
        if total == 0:
            raise ValueError("SegmentationReport: the validation set has no labelled pixel")

        iou = [float(v) for v in jaccard.compute().cpu()]
        present = [v for v in iou if not math.isnan(v)]
        majority = int(torch.argmax(support))
        metrics = {
            "iou": dict(zip(names, iou)),
            "miou": float(np.mean(present)) if present else float("nan"),
            "pixel_accuracy": correct / total,
            "support": dict(zip(names, (int(s) for s in support))),
            # For scale: predicting the most frequent validation class everywhere (IoU = its share, others 0).
            "majority_baseline_miou": float(support[majority]) / total / sum(int(s) > 0 for s in support),
            "epochs": trainer.current_epoch,
            "global_step": trainer.global_step,
        }
        self.metrics = metrics
        out_dir = run_dir(trainer).resolve()
        if trainer.is_global_zero:
            print(format_iou_table(names, iou, support.tolist(), title="Validation IoU (final model)"), flush=True)
            print(
                f"  pixel accuracy {metrics['pixel_accuracy']:.4f}; majority-class baseline mIoU "
                f"{metrics['majority_baseline_miou']:.4f} ({names[majority]} everywhere)",
                flush=True,
            )
            write_text(out_dir / "val_metrics.json", json.dumps(metrics, indent=2, allow_nan=True))
            if best is not None:
                colors = self.class_colors or getattr(trainer.datamodule, "class_colors", None)
                self.figure_path = self._figure(out_dir / self.filename, best[1:], names, ignore, rgb, colors)
                print(f"Validation tile figure (image / truth / prediction): {self.figure_path}", flush=True)
        return metrics

    def _figure(
        self,
        path: Path,
        tile: tuple[np.ndarray, np.ndarray, np.ndarray],
        names: Sequence[str],
        ignore: int | None,
        rgb: Sequence[int],
        colors: Sequence[str] | None = None,
    ) -> Path:
        # The object-oriented API renders with Agg whatever pyplot's backend is (no display needed, no global state).
        from matplotlib import colormaps
        from matplotlib.colors import BoundaryNorm, ListedColormap, to_rgb
        from matplotlib.figure import Figure
        from matplotlib.patches import Patch

        image, mask, pred = tile
        composite = image[list(rgb)].astype(np.float64).transpose(1, 2, 0)
        lo, hi = np.percentile(composite, [2, 98], axis=(0, 1))
        composite = np.clip((composite - lo) / np.maximum(hi - lo, 1e-6), 0, 1)
        if colors is not None and len(colors) == len(names):
            palette = [to_rgb(c) for c in colors]
        else:
            palette = [colormaps["tab10"](i % 10)[:3] for i in range(len(names))]
        cmap = ListedColormap([_IGNORE_COLOUR, *palette])
        norm = BoundaryNorm(np.arange(-1.5, len(names)), cmap.N)
        shown_mask = np.where(mask == ignore, -1, mask) if ignore is not None else mask

        fig = Figure(figsize=(12, 4.8))
        axes = fig.subplots(1, 3)
        axes[0].imshow(composite)
        axes[0].set_title(f"image (RGB = channels {list(rgb)})")
        axes[1].imshow(shown_mask, cmap=cmap, norm=norm, interpolation="nearest")
        axes[1].set_title("ground truth")
        axes[2].imshow(pred, cmap=cmap, norm=norm, interpolation="nearest")
        axes[2].set_title("prediction")
        for ax in axes:
            ax.set_axis_off()
        handles = [Patch(color=c, label=n) for c, n in zip(palette, names)]
        if ignore is not None:
            handles.append(Patch(color=_IGNORE_COLOUR, label="ignored / nodata"))
        fig.legend(handles=handles, loc="lower center", ncol=min(len(handles), 8), frameon=False)
        fig.subplots_adjust(left=0.01, right=0.99, top=0.92, bottom=0.1, wspace=0.04)
        with atomic_path(path) as tmp:  # the temporary name keeps the suffix: savefig infers the format
            fig.savefig(tmp, dpi=100)
        return path
