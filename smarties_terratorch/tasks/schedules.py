"""Learning-rate schedules shared by the tasks (kept free of TerraTorch imports, so pretraining starts fast)."""

from __future__ import annotations

import math

__all__ = ["cosine_warmup_factor"]


def cosine_warmup_factor(step: int, warmup_steps: int, total_steps: int) -> float:
    """LR multiplier: linear warmup from 0 over ``warmup_steps``, then half-cosine to 0 at ``total_steps``."""
    if warmup_steps > 0 and step < warmup_steps:
        return step / warmup_steps
    span = max(total_steps - warmup_steps, 1)
    progress = min(max(step - warmup_steps, 0) / span, 1.0)
    return 0.5 * (1.0 + math.cos(math.pi * progress))
