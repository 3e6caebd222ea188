"""The five evaluation protocols of the SMARTIES paper table and a check that a built task really follows one.

The protocols themselves live with their task classes: fine-tuning and linear probing in
:class:`~smarties_terratorch.tasks.classification.SmartiesClassificationTask`, kNN in
:class:`~smarties_terratorch.tasks.knn.SmartiesKNNTask`, UPerNet and non-linear probing in TerraTorch's
``SemanticSegmentationTask`` with ``freeze_backbone: true`` (the configs under ``configs/``). A config can say
``freeze_backbone: false`` by mistake and still run; :func:`check_protocol` inspects the *built* model (and, after
``fit``, the optimiser) so that a benchmark row records the protocol it actually ran, and fails loudly otherwise:

=================  ========================================================================================
``finetune``       every parameter trainable; with ``layer_decay < 1`` the optimiser's per-layer learning
                   rates really follow ``lr * decay ** (depth + 1 - layer)``
``linear_probe``   frozen encoder; one ``Linear`` (after ``BatchNorm1d(affine=False)`` for scenes) or one 1x1
                   convolution (dense probe, optionally after ``BatchNorm2d(affine=False)``) is the only
                   trainable layer, no non-linearity, no affine normalisation
``knn``            frozen encoder, no trainable parameter, k and temperature recorded
``upernet_probe``  frozen encoder, a trainable ``UperNetDecoder`` (PANGAEA's protocol)
``nonlinear_probe``frozen encoder, a trainable head with at least one non-linearity
=================  ========================================================================================

:func:`cross_modal_retrieval` is the retrieval check of a shared embedding space: is a place's embedding from one
sensor nearest to the same place's embedding from the other sensor?
"""

from __future__ import annotations

from typing import Any

import torch
from terratorch.tasks import SemanticSegmentationTask
from torch import Tensor, nn
from torchmetrics.retrieval import RetrievalHitRate

__all__ = [
    "PROTOCOLS",
    "FeatureNormDecoder",
    "ProtocolError",
    "SmartiesSegmentationTask",
    "check_protocol",
    "cross_modal_retrieval",
]

PROTOCOLS: tuple[str, ...] = ("finetune", "linear_probe", "knn", "upernet_probe", "nonlinear_probe")

_NONLINEAR = (nn.ReLU, nn.GELU, nn.SiLU, nn.LeakyReLU, nn.ReLU6, nn.Sigmoid, nn.Tanh, nn.Softmax)
_BATCH_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.SyncBatchNorm)


class ProtocolError(ValueError):
    """The built task does not follow the protocol its benchmark row declares."""


def _count(module: nn.Module, trainable: bool) -> int:
    return sum(p.numel() for p in module.parameters() if p.requires_grad == trainable)


def _encoder_and_head(task: Any) -> tuple[nn.Module, nn.Module]:
    model = getattr(task, "model", None)
    encoder = getattr(model, "encoder", None)
    if encoder is None:
        raise ProtocolError(f"{type(task).__name__} has no model.encoder: not a TerraTorch encoder-decoder task")
    parts = [getattr(model, n) for n in ("neck", "decoder", "head", "aux_heads") if getattr(model, n, None) is not None]
    return encoder, nn.ModuleList(parts)


def _check_frozen(encoder: nn.Module, protocol: str) -> None:
    moving = _count(encoder, trainable=True)
    if moving:
        raise ProtocolError(f"{protocol}: the encoder has {moving:,} trainable parameters (set freeze_backbone: true)")


def _check_layer_decay(task: Any, optimizers: list[Any] | None) -> dict[str, Any]:
    decay = float(getattr(task, "hparams", {}).get("layer_decay", 1.0))
    facts: dict[str, Any] = {"layer_decay": decay}
    if not optimizers:
        return facts
    groups = optimizers[0].param_groups
    if decay < 1 and not all("layer_id" in g for g in groups):
        raise ProtocolError("finetune: layer_decay < 1 but the optimiser has no per-layer groups")
    base = float(task.hparams["lr"])
    depth = max((g["layer_id"] for g in groups if "layer_id" in g), default=1) - 1
    for group in groups:
        if "layer_id" not in group:
            continue
        expected = base * decay ** (depth + 1 - group["layer_id"])
        lr = group.get("initial_lr", group["lr"])
        if abs(lr - expected) > 1e-12 + 1e-6 * expected:
            raise ProtocolError(f"finetune: group {group.get('name')} has lr {lr}, layer decay says {expected}")
    facts["layer_lrs"] = {int(g["layer_id"]): g.get("initial_lr", g["lr"]) for g in groups if "layer_id" in g}
    return facts


def check_protocol(protocol: str, task: Any, optimizers: list[Any] | None = None) -> dict[str, Any]:
    """Check that ``task`` (a built LightningModule) follows ``protocol``; return the facts that were checked.

    Args:
        protocol: one of :data:`PROTOCOLS`.
        task: the task after the CLI built it (its ``model`` exists).
        optimizers: the trainer's optimisers after ``fit`` (``trainer.optimizers``), to verify layer decay.

    Raises:
        ProtocolError: the task does not follow the protocol.
        ValueError: unknown protocol name.
    """
    if protocol not in PROTOCOLS:
        raise ValueError(f"Unknown protocol {protocol!r}; known: {', '.join(PROTOCOLS)}")
    if protocol == "knn":
        from .knn import SmartiesKNNTask

        if not isinstance(task, SmartiesKNNTask):
            raise ProtocolError(f"knn: expected SmartiesKNNTask, got {type(task).__name__}")
        if _count(task, trainable=True):
            raise ProtocolError("knn: the task has trainable parameters")
        return {"k": task.hparams["k"], "temperature": task.hparams["temperature"], "encoder_frozen": True}

    encoder, head = _encoder_and_head(task)
    facts: dict[str, Any] = {
        "encoder_trainable_params": _count(encoder, trainable=True),
        "head_trainable_params": _count(head, trainable=True),
    }
    if protocol == "finetune":
        frozen = _count(task.model, trainable=False)
        if frozen:
            raise ProtocolError(f"finetune: {frozen:,} parameters are frozen")
        facts.update(_check_layer_decay(task, optimizers))
        return facts
    _check_frozen(encoder, protocol)
    if not facts["head_trainable_params"]:
        raise ProtocolError(f"{protocol}: nothing is trainable")
    if protocol == "linear_probe":
        from .classification import SmartiesLinearProbeDecoder

        decoder = getattr(task.model, "decoder", None)
        if isinstance(decoder, SmartiesLinearProbeDecoder) and decoder.bn.affine:
            raise ProtocolError("linear_probe: the probe's BatchNorm1d must have no affine parameters")
        affine = [type(m).__name__ for m in head.modules() if isinstance(m, _BATCH_NORMS) and m.affine]
        if affine:
            raise ProtocolError(f"linear_probe: the head normalises with affine parameters ({', '.join(affine)})")
        # one Linear (scene classification) or one 1x1 convolution (dense, per-patch probe), nothing non-linear
        layers = [
            m
            for m in head.modules()
            if isinstance(m, nn.Linear) or (isinstance(m, nn.Conv2d) and m.kernel_size == (1, 1))
        ]
        others = [m for m in head.modules() if isinstance(m, nn.Conv2d) and m.kernel_size != (1, 1)]
        if len(layers) != 1 or others or any(isinstance(m, _NONLINEAR) for m in head.modules()):
            raise ProtocolError(
                f"linear_probe: expected one Linear / 1x1 Conv2d and no non-linearity in the head, found {len(layers)}"
            )
        facts["decoder"] = type(decoder).__name__
        facts["probe_layer"] = repr(layers[0])
        return facts
    nonlinear = [type(m).__name__ for m in head.modules() if isinstance(m, _NONLINEAR)]
    if not nonlinear:
        raise ProtocolError(f"{protocol}: the trainable head has no non-linearity (that is a linear probe)")
    decoder = type(getattr(task.model, "decoder", None)).__name__
    if protocol == "upernet_probe" and decoder != "UperNetDecoder":
        raise ProtocolError(f"upernet_probe: the decoder is {decoder}, not UperNetDecoder")
    facts["decoder"] = decoder
    return facts


class FeatureNormDecoder(nn.Module):
    """A decoder followed by ``BatchNorm2d(C, affine=False, eps=1e-6)``: the released linear probe's feature
    normalisation, applied per token.

    The released linear-probe head is ``BatchNorm1d(D, affine=False, eps=1e-6)`` then ``Linear``. On a
    ``[B, D, h, w]`` token map, ``BatchNorm2d`` normalises each channel over batch and positions, which is exactly
    ``BatchNorm1d`` over the ``B * h * w`` token vectors; TerraTorch's head then applies the 1x1 convolution (the
    per-token ``Linear``). Without affine parameters the normalisation adds nothing trainable, so the probe stays
    linear: it only stops feature dimensions with large or uneven scales from dominating the probe's optimisation.

    Args:
        decoder: the wrapped decoder (e.g. TerraTorch's ``IdentityDecoder``); needs ``out_channels``.
        eps: the normalisation's epsilon (the released head's 1e-6).
    """

    def __init__(self, decoder: nn.Module, eps: float = 1e-6) -> None:
        super().__init__()
        channels = getattr(decoder, "out_channels", None)
        if not isinstance(channels, int):
            raise ValueError(
                f"feature_norm needs a decoder with an integer out_channels; {type(decoder).__name__} has {channels!r}"
            )
        self.decoder = decoder
        self.norm = nn.BatchNorm2d(channels, affine=False, eps=eps)

    @property
    def out_channels(self) -> int:
        return self.decoder.out_channels

    def forward(self, x: list[Tensor]) -> Tensor:
        out = self.decoder(x)
        if out.ndim != 4:
            raise ValueError(f"FeatureNormDecoder expects a [B, C, h, w] decoder output, got {tuple(out.shape)}")
        return self.norm(out)


class SmartiesSegmentationTask(SemanticSegmentationTask):
    """TerraTorch's ``SemanticSegmentationTask`` with label smoothing and an optional feature normalisation.

    The authors' DFC2020 probe trains with label-smoothed cross-entropy (0.1); TerraTorch's loss names take no
    smoothing argument. ``feature_norm: true`` puts a non-affine ``BatchNorm2d`` between the decoder and the head
    (:class:`FeatureNormDecoder`): with ``IdentityDecoder`` and a 1x1-convolution head this is the released
    linear-probe head (``BatchNorm1d(affine=False)`` + ``Linear``) applied to every token. With both options at
    their defaults the task is TerraTorch's, unchanged.

    Args:
        label_smoothing: ``torch.nn.CrossEntropyLoss(label_smoothing=...)`` with ``loss: ce``; 0 = TerraTorch's loss.
        feature_norm: normalise the decoder output without affine parameters before the head.
        *args, **kwargs: :class:`terratorch.tasks.SemanticSegmentationTask`.
    """

    def __init__(self, *args: Any, label_smoothing: float = 0.0, feature_norm: bool = False, **kwargs: Any) -> None:
        if not 0 <= label_smoothing < 1:
            raise ValueError(f"label_smoothing must be in [0, 1), got {label_smoothing}")
        # read by configure_losses / configure_models, which the parent's __init__ calls
        self._label_smoothing = float(label_smoothing)
        self._feature_norm = bool(feature_norm)
        super().__init__(*args, **kwargs)
        self.hparams["label_smoothing"] = self._label_smoothing
        self.hparams["feature_norm"] = self._feature_norm

    def configure_models(self) -> None:
        super().configure_models()
        if getattr(self, "_feature_norm", False):
            self.model.decoder = FeatureNormDecoder(self.model.decoder)

    def configure_losses(self) -> None:
        smoothing = getattr(self, "_label_smoothing", 0.0)
        if not smoothing:
            super().configure_losses()
            return
        if self.hparams["loss"] != "ce":
            raise ValueError(f"label_smoothing needs loss: ce, got loss: {self.hparams['loss']!r}")
        weights = self.hparams["class_weights"]
        self.criterion = nn.CrossEntropyLoss(
            ignore_index=self.hparams["ignore_index"],
            weight=torch.tensor(weights, dtype=torch.float32) if weights is not None else None,
            label_smoothing=smoothing,
        )


def cross_modal_retrieval(first: Tensor, second: Tensor, center: bool = True, top_k: int = 1) -> dict[str, float]:
    """Top-k retrieval accuracy between two embeddings of the same ``N`` items (e.g. S1 and S2 of ``N`` places).

    Row ``i`` of ``first`` and row ``i`` of ``second`` describe the same item. Each row of one side queries all
    ``N`` rows of the other by cosine similarity; a query scores when its own partner ranks in the first ``top_k``
    (torchmetrics' ``RetrievalHitRate``). Chance level is ``top_k / N``.

    Args:
        first: ``[N, D]`` embeddings from the first sensor.
        second: ``[N, D]`` embeddings from the second sensor (same order).
        center: subtract each side's mean embedding first, so a direction shared by all items of one sensor
            (which says nothing about the item) does not dominate the cosine.
        top_k: a query scores when its partner is among its ``top_k`` nearest candidates.

    Returns:
        ``{"first_to_second": acc, "second_to_first": acc, "chance": top_k / N, "n": N}``.

    Raises:
        ValueError: the two sides differ in shape, are not 2-D, or hold fewer than two items; ``top_k`` not in 1..N.
    """
    if first.ndim != 2 or first.shape != second.shape or first.shape[0] < 2:
        raise ValueError(
            f"cross_modal_retrieval needs two [N, D] embeddings of the same N >= 2 items, got {tuple(first.shape)} "
            f"and {tuple(second.shape)}"
        )
    if not 1 <= top_k <= first.shape[0]:
        raise ValueError(f"top_k must be in 1..{first.shape[0]} (the number of items), got {top_k}")
    a, b = first.detach().double(), second.detach().double()
    if center:
        a, b = a - a.mean(0), b - b.mean(0)
    sim = nn.functional.normalize(a, dim=1) @ nn.functional.normalize(b, dim=1).T  # [N queries, N candidates]
    n = sim.shape[0]
    target = torch.eye(n, dtype=torch.bool)
    queries = torch.arange(n).repeat_interleave(n)
    out: dict[str, float] = {"chance": top_k / n, "n": n}
    for name, scores in (("first_to_second", sim), ("second_to_first", sim.T)):
        out[name] = float(RetrievalHitRate(top_k=top_k)(scores.reshape(-1), target.reshape(-1), indexes=queries))
    return out
