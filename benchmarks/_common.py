"""Helpers shared by the benchmark scripts (imported as a sibling module: run the scripts as files)."""

from __future__ import annotations

import os
import platform
from collections.abc import Callable
from typing import Any


def count_flops(fn: Callable[[], Any]) -> int:
    """FLOPs of ``fn()`` by ``FlopCounterMode``; CPU SDPA (``_scaled_dot_product_flash_attention_for_cpu``) is
    not in torch's FLOP registry (it would count 0), so it is registered with torch's own SDPA formula."""
    import torch
    import torch.utils.flop_counter as fc

    def cpu_sdpa(q_shape: Any, k_shape: Any, v_shape: Any, *args: Any, out_shape: Any = None, **kwargs: Any) -> int:
        return fc.sdpa_flop_count(q_shape, k_shape, v_shape)

    mapping = {}
    op = getattr(torch.ops.aten, "_scaled_dot_product_flash_attention_for_cpu", None)
    if op is not None:
        mapping[op] = cpu_sdpa
    with fc.FlopCounterMode(display=False, custom_mapping=mapping) as counter:
        fn()
    return int(counter.get_total_flops())


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            return next((ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")), platform.processor())
    except OSError:
        return platform.processor()


def loadavg() -> tuple[float, float, float] | None:
    try:
        return os.getloadavg()
    except OSError:
        return None
