"""Dataset readers and data modules for SMARTIES."""

from .bigearthnet import (
    BIGEARTHNET19_LABELS,
    BIGEARTHNET43_LABELS,
    BIGEARTHNET43_TO_19,
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
    "S1_BANDS",
    "S2_L2A_BANDS",
    "read_bigearthnet_s1",
    "read_bigearthnet_s2",
    "read_labels",
    "read_metadata",
    "to_bigearthnet19",
]
