"""BigEarthNet v1.0 patch readers and label mapping, kept importable here for configs and scripts.

They live in :mod:`smarties_terratorch.datasets.bigearthnet`.
"""

from ..datasets.bigearthnet import (
    BIGEARTHNET19_LABELS,
    BIGEARTHNET43_LABELS,
    BIGEARTHNET43_TO_19,
    PATCH_SIZE,
    S1_BANDS,
    S2_L2A_BANDS,
    read_bigearthnet_s1,
    read_bigearthnet_s2,
    read_labels,
    read_metadata,
    to_bigearthnet19,
)

__all__ = [
    "BIGEARTHNET19_LABELS",
    "BIGEARTHNET43_LABELS",
    "BIGEARTHNET43_TO_19",
    "PATCH_SIZE",
    "S1_BANDS",
    "S2_L2A_BANDS",
    "read_bigearthnet_s1",
    "read_bigearthnet_s2",
    "read_labels",
    "read_metadata",
    "to_bigearthnet19",
]
