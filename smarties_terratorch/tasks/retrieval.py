"""The retrieval check of a shared embedding space: is a place's embedding from one sensor nearest to the same
place's embedding from the other sensor?"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torchmetrics.retrieval import RetrievalHitRate

__all__ = ["cross_modal_retrieval"]


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
