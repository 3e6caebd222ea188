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
"""

from __future__ import annotations

from typing import Any

from torch import nn

__all__ = ["PROTOCOLS", "ProtocolError", "check_protocol"]

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
