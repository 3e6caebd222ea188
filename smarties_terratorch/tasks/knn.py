"""The SMARTIES kNN protocol (the paper's kNN evaluation) as a LightningModule for ``terratorch validate``.

Frozen encoder, no head. The feature of an image is the CLS token after the backbone's final LayerNorm (the
release's ``forward_head(pre_logits)``; shared with the classification protocols through
:class:`~smarties_terratorch.tasks.classification.SmartiesClsToken`). Every training image is encoded once
into a memory bank; each evaluation image votes among its ``k = 20`` most cosine-similar bank features, each
vote weighted by ``exp(similarity / 0.07)``; the prediction is the argmax of the summed one-hot labels. Top-1
accuracy comes from torchmetrics (``val/Accuracy_Micro``, the same key as TerraTorch's classification task).

Multi-label data (BigEarthNet) get the same weighted vote over multi-hot labels, normalised by the summed
weights, scored with micro mAP (``val/mAP_micro``). ``leave_one_out`` uses the evaluation split as its own bank
and excludes each sample from its own neighbours: a wiring check on a handful of real samples.

Run: ``terratorch validate -c configs/eurosat_knn.yaml`` (``fit`` has nothing to train).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from terratorch.registry import BACKBONE_REGISTRY
from torch import Tensor
from torchmetrics import MetricCollection
from torchmetrics.classification import MulticlassAccuracy, MultilabelAveragePrecision
from tqdm.auto import tqdm

from .classification import SmartiesClsToken

try:  # torchgeo 0.10 renamed ``torchgeo.trainers`` to ``torchgeo.tasks`` (the old name stays as a deprecated alias)
    from torchgeo.tasks import BaseTask
except ImportError:  # torchgeo < 0.10
    from torchgeo.trainers import BaseTask

__all__ = ["SmartiesKNNTask", "knn_scores"]


def knn_scores(
    query: Tensor,
    bank: Tensor,
    bank_targets: Tensor,
    num_classes: int,
    k: int = 20,
    temperature: float = 0.07,
    exclude: Tensor | None = None,
) -> Tensor:
    """Weighted kNN class scores ``[Q, num_classes]`` (each row sums to 1).

    Args:
        query: ``[Q, D]`` features.
        bank: ``[N, D]`` features of the labelled samples.
        bank_targets: ``[N]`` class indices or ``[N, num_classes]`` multi-hot labels.
        num_classes: number of classes.
        k: neighbours per query (capped at the bank size).
        temperature: vote weight ``exp(cosine / temperature)``.
        exclude: ``[Q]`` bank index to leave out per query (leave-one-out), or ``None``.
    """
    if query.ndim != 2 or bank.ndim != 2 or query.shape[1] != bank.shape[1]:
        raise ValueError(f"knn_scores needs [Q, D] and [N, D] features, got {tuple(query.shape)} / {tuple(bank.shape)}")
    if bank_targets.shape[0] != bank.shape[0]:
        raise ValueError(f"{bank.shape[0]} bank features but {bank_targets.shape[0]} bank labels")
    sim = F.normalize(query.float(), dim=1) @ F.normalize(bank.float(), dim=1).T
    available = bank.shape[0]
    if exclude is not None:
        sim = sim.scatter(1, exclude.view(-1, 1).to(sim.device), float("-inf"))
        available -= 1
    k = min(k, available)
    if k < 1:
        raise ValueError("The kNN bank is empty (no labelled samples left)")
    top_sim, top_idx = sim.topk(k, dim=1)
    weights = (top_sim / temperature).exp()
    if bank_targets.ndim == 1:
        onehot = F.one_hot(bank_targets.long(), num_classes).to(weights.dtype)
    else:
        onehot = bank_targets.to(weights.dtype)
    votes = torch.einsum("qk,qkc->qc", weights, onehot[top_idx])
    return votes / weights.sum(dim=1, keepdim=True)


class SmartiesKNNTask(BaseTask):
    """kNN evaluation of a frozen SMARTIES encoder (k 20, T 0.07, cosine), built from TerraTorch-style model args.

    A torchgeo ``BaseTask`` (what TerraTorch's CLI accepts as ``model``); run it with ``validate`` or ``test``.

    Args:
        model_args: ``backbone`` (a registered backbone name, e.g. ``smarties_vit_base_patch16``), ``num_classes``
            and ``backbone_*`` arguments (``backbone_bands``, ``backbone_sensor``, ``backbone_ckpt_path``,
            ``backbone_modality_bands``, ...), as in the classification configs.
        k: neighbours.
        temperature: vote temperature.
        multilabel: multi-hot labels and micro/macro mAP instead of top-1 accuracy.
        leave_one_out: the evaluated split is its own bank, each sample excluded from its own vote.
        class_names: optional, for the record.
    """

    monitor = "val/Accuracy_Micro"
    mode = "max"

    def __init__(
        self,
        model_args: dict[str, Any],
        k: int = 20,
        temperature: float = 0.07,
        multilabel: bool = False,
        leave_one_out: bool = False,
        class_names: list[str] | None = None,
    ) -> None:
        if k < 1 or temperature <= 0:
            raise ValueError(f"k must be >= 1 and temperature > 0, got k={k}, temperature={temperature}")
        self._bank: tuple[Tensor, Tensor] | None = None
        self._offset = 0
        super().__init__()  # saves the hyperparameters, then configure_models / configure_metrics
        if multilabel:
            self.monitor = "val/mAP_micro"

    def configure_models(self) -> None:
        args = dict(self.hparams["model_args"])
        name = args.pop("backbone", None)
        self.num_classes = args.pop("num_classes", None)
        if name is None or self.num_classes is None:
            raise ValueError("model_args needs `backbone` (a registered backbone name) and `num_classes`")
        kwargs = {}
        for key, value in args.items():
            if not key.startswith("backbone_"):
                raise ValueError(f"model_args.{key}: the kNN protocol has no neck/decoder/head; only backbone_* keys")
            kwargs[key.removeprefix("backbone_")] = value
        kwargs["out_indices"] = [-1]
        self.encoder = BACKBONE_REGISTRY.build(name, **kwargs)
        self.encoder.requires_grad_(False)
        self.neck = SmartiesClsToken(list(self.encoder.out_channels))
        self.neck.bind(self.encoder)

    def configure_metrics(self) -> None:
        if self.hparams["multilabel"]:
            metrics = MetricCollection(
                {
                    "mAP_micro": MultilabelAveragePrecision(num_labels=self.num_classes, average="micro"),
                    "mAP_macro": MultilabelAveragePrecision(num_labels=self.num_classes, average="macro"),
                }
            )
        else:
            metrics = MetricCollection(
                {"Accuracy_Micro": MulticlassAccuracy(num_classes=self.num_classes, average="micro")}
            )
        self.val_metrics = metrics.clone(prefix="val/")
        self.test_metrics = metrics.clone(prefix="test/")

    # ------------------------------------------------------------------ features
    @torch.no_grad()
    def features(self, x: Tensor | dict[str, Tensor]) -> Tensor:
        """``[B, D']`` CLS features after the final norm (``D' = S * D`` for late/mixup fusion)."""
        self.encoder.eval()
        return self.neck(self.encoder(x))[0]

    def _encode(self, loader: Any, desc: str) -> tuple[Tensor, Tensor]:
        feats, labels = [], []
        for batch in tqdm(loader, desc=desc, leave=False, dynamic_ncols=True):
            image = batch["image"]
            image = (
                {k: v.to(self.device) for k, v in image.items()} if isinstance(image, dict) else image.to(self.device)
            )
            feats.append(self.features(image))
            labels.append(batch["label"].to(self.device))
        if not feats:
            raise ValueError(f"{desc}: the loader yielded no batches")
        return torch.cat(feats), torch.cat(labels)

    def _build_bank(self, stage: str) -> None:
        dm = self.trainer.datamodule
        if dm is None:
            raise ValueError("SmartiesKNNTask needs a data module (the bank is its training split)")
        if self.hparams["leave_one_out"]:
            loader = dm.val_dataloader() if stage == "val" else dm.test_dataloader()
            # the evaluated loader must not shuffle: sample i of the bank is sample i of the evaluation
            self._bank = self._encode(loader, f"kNN bank ({stage}, leave-one-out)")
        else:
            self._bank = self._encode(dm.train_dataloader(), "kNN bank (train split)")
        self._offset = 0

    # ------------------------------------------------------------------ evaluation
    def _step(self, batch: dict[str, Any], metrics: MetricCollection) -> None:
        assert self._bank is not None
        bank, bank_labels = self._bank
        query = self.features(batch["image"])
        exclude = None
        if self.hparams["leave_one_out"]:
            exclude = torch.arange(self._offset, self._offset + query.shape[0], device=query.device)
        self._offset += query.shape[0]
        scores = knn_scores(
            query, bank, bank_labels, self.num_classes, self.hparams["k"], self.hparams["temperature"], exclude
        )
        target = batch["label"]
        metrics.update(scores, target.long())
        self.log_dict(metrics, on_epoch=True, on_step=False, batch_size=query.shape[0])

    def on_validation_epoch_start(self) -> None:
        self._build_bank("val")

    def on_test_epoch_start(self) -> None:
        self._build_bank("test")

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        self._step(batch, self.val_metrics)

    def test_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        self._step(batch, self.test_metrics)

    def training_step(self, batch: Any, batch_idx: int) -> None:
        raise RuntimeError("The kNN protocol trains nothing: run `validate` (or `test`), not `fit`")

    def configure_optimizers(self) -> None:
        return None

    def forward(self, x: Tensor | dict[str, Tensor]) -> Tensor:
        return self.features(x)

    def extra_repr(self) -> str:
        return f"k={self.hparams['k']}, temperature={self.hparams['temperature']}"
