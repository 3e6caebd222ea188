"""Declared SMARTIES weights: the record of one released file (:class:`SmartiesWeights`), the fine-tuned task
weights (with heads) and the registry of every declared tag (:data:`WEIGHTS`, :func:`get_weights`).

The encoders' own weights are declared beside their architecture, in
:data:`smarties_terratorch.models.vit.default_cfgs` (as timm's ``default_cfgs``), and registered here when that
module is imported. This module imports no model: the fine-tuned entries name their architecture and base encoder
themselves.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["WEIGHTS", "SmartiesWeights", "get_weights", "register_weights"]


@dataclass(frozen=True)
class SmartiesWeights:
    """One released weights file.

    Attributes:
        name: tag, e.g. ``smarties-v1-vitb``.
        arch: factory that builds the matching model.
        repo_id, filename: location on the Hugging Face Hub.
        revision: pinned commit of ``repo_id``. ``None`` = not recorded yet: downloading then resolves the
            repo's current commit and logs it (:func:`~smarties_terratorch.hub.resolve_revision`), never a silent
            moving ``main``.
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


#: Every declared weights file by tag: the fine-tuned files below, and the encoders' files once
#: :mod:`smarties_terratorch.models.vit` (which declares them) is imported.
WEIGHTS: dict[str, SmartiesWeights] = {}


def register_weights(*weights: SmartiesWeights) -> None:
    """Add declared weights to :data:`WEIGHTS` (as timm's model registry takes each model's pretrained configs)."""
    merged = {**WEIGHTS, **{w.name: w for w in weights}}
    # Encoders first, then the files that sit on them, whatever the import order: every listing reads the same.
    WEIGHTS.clear()
    WEIGHTS.update(sorted(merged.items(), key=lambda item: item[1].base is not None))


def get_weights(name: str) -> SmartiesWeights:
    """Declared weights by tag; unknown tags raise ``KeyError`` listing the known ones.

    The encoders' tags (``smarties-v1-vitb``, ...) are known once :mod:`smarties_terratorch.models` is imported, as
    timm's pretrained configs are once ``timm.models`` is: every model, factory and entry point of the package does.
    """
    if name not in WEIGHTS:
        raise KeyError(f"Unknown SMARTIES weights {name!r}. Known: {', '.join(WEIGHTS)}.")
    return WEIGHTS[name]


_FT_REPO = "gsumbul/SMARTIES-v1-finetuned-models"

# The factory each encoder's weights fit (the encoders' own entries sit in models/vit.py's default_cfgs).
_ARCH = {"vitb": "smarties_vit_base_patch16", "vitl": "smarties_vit_large_patch16"}


def _finetuned(size: str, task: str, **kw: Any) -> SmartiesWeights:
    return SmartiesWeights(
        name=f"smarties-v1-{size}-{task}",
        arch=_ARCH[size],
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

register_weights(
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
)
