"""TerraTorch necks of this package: ``TemporalLTAE`` (PANGAEA's L-TAE temporal fusion for multi-temporal inputs)
and ``SmartiesClsToken`` (the CLS token after the final norm, for classification).

Importing this module (``import smarties_terratorch.backbone`` does it, and so does any TerraTorch run that names a
SMARTIES backbone) registers them in ``TERRATORCH_NECK_REGISTRY``. A time-series config keeps every date's
features (``backbone_temporal_pooling: keep``), turns the tokens into per-date maps and fuses the dates with L-TAE
before the UPerNet neck, as PANGAEA's ``seg_upernet_mt_ltae`` decoder does:

.. code-block:: yaml

    model_args:
      backbone: smarties_vit_base_patch16
      backbone_use_temporal: true
      backbone_temporal_pooling: keep          # [B, T, 1 + N, D] per block
      necks:
        - name: SelectIndices
          indices: [3, 5, 7, 11]
        - name: ReshapeTokensToImage
          temporal_inputs: true                # -> [B, T, D, H, W]
        - name: TemporalLTAE                   # -> [B, D, H, W]
        - name: LearnedInterpolateToPyramidal
"""

from __future__ import annotations

from typing import Any

from terratorch.registry import TERRATORCH_NECK_REGISTRY
from torch import Tensor, nn

from .models.ltae import LTAE

__all__ = ["SmartiesClsToken", "TemporalLTAE"]


# Not a subclass of terratorch.models.necks.Neck: this module is imported while TerraTorch imports its registry,
# which terratorch.models.necks itself imports first (a cycle). TerraTorch's factory only needs the contract:
# construction from the channel list, ``process_channel_list`` and ``forward(features, **kwargs)``.
@TERRATORCH_NECK_REGISTRY.register
class TemporalLTAE(nn.Module):
    """Fuses the dates of every feature map ``[B, T, C, H, W]`` into ``[B, C, H, W]`` with an :class:`LTAE`.

    The defaults are PANGAEA's multi-temporal UPerNet (``SegMTUPerNet``, ``multi_temporal_strategy: ltae``): one
    L-TAE shared by all feature maps, width kept (``d_model`` and the MLP equal to the maps' channels), 16 heads,
    4-dimensional keys, dropout 0.2, attention dropout 0.1, no positional encoding. The L-TAE is trainable even with
    ``freeze_backbone: true`` (it is part of the neck).

    Args:
        channel_list: channels of the incoming maps (given by TerraTorch's factory).
        n_head: attention heads.
        d_k: key / query width.
        dropout: dropout after the L-TAE's MLP.
        attn_dropout: dropout on the attention weights.
        shared: one L-TAE for all maps (PANGAEA), or one per map (``False``).
    """

    def __init__(
        self,
        channel_list: list[int],
        n_head: int = 16,
        d_k: int = 4,
        dropout: float = 0.2,
        attn_dropout: float = 0.1,
        shared: bool = True,
    ) -> None:
        super().__init__()
        self.channel_list = list(channel_list)
        if shared and len(set(channel_list)) > 1:
            raise ValueError(
                f"TemporalLTAE: one shared L-TAE needs maps of equal width, got channels {channel_list}; "
                f"set shared: false (one L-TAE per map)."
            )
        widths = channel_list[:1] if shared else channel_list
        args = {"n_head": n_head, "d_k": d_k, "dropout": dropout, "attn_dropout": attn_dropout}
        self.ltae = nn.ModuleList(LTAE(c, **args) for c in widths)
        self.shared = shared

    def forward(self, features: list[Tensor], **kwargs: Any) -> list[Tensor]:
        """Fuse each ``[B, T, C, H, W]`` map over ``T``."""
        out = []
        for i, x in enumerate(features):
            if x.dim() != 5:
                raise ValueError(
                    f"TemporalLTAE expects per-date maps [B, T, C, H, W], got shape {tuple(x.shape)}: set "
                    f"backbone_temporal_pooling: keep and put ReshapeTokensToImage (temporal_inputs: true) before it."
                )
            ltae = self.ltae[0 if self.shared else i]
            out.append(ltae.forward_map(x.transpose(1, 2)))  # LTAE works on PANGAEA's [B, C, T, H, W]
        return out

    def process_channel_list(self, channel_list: list[int]) -> list[int]:
        """The fused maps keep their channels."""
        return list(channel_list)


@TERRATORCH_NECK_REGISTRY.register
def SmartiesClsToken(channel_list: list[int], **kwargs: Any) -> nn.Module:  # noqa: N802 - the neck's name
    """The ``SmartiesClsToken`` neck for any TerraTorch task (:class:`.tasks.classification.SmartiesClsToken`).

    Registered here, with the other necks, so that TerraTorch's own ``ClassificationTask`` finds it; the class
    lives with the classification tasks, imported only when a model is built (TerraTorch is still importing when
    this module registers). Importing that module registers the class itself under the same name.
    """
    from .tasks.classification import SmartiesClsToken as neck

    return neck(channel_list, **kwargs)
