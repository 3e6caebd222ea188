"""Device and precision selection shared by the command-line tools (``embed``, ``predict``, ``export``).

``--device auto`` takes the first accelerator torch can use (CUDA, then Apple MPS), else the CPU.
``--precision auto`` takes a reduced precision only where the hardware computes it natively, so it is never a
slowdown: bf16 on CUDA GPUs that support it and on CPUs with AVX-512 BF16 or AMX, fp16 on older CUDA GPUs, fp32
everywhere else. On a CPU without native bf16, torch emulates bf16 matrix products and they run several times
slower than fp32; asking for ``bf16`` there explicitly works but warns.
"""

from __future__ import annotations

import contextlib
import platform
import warnings
from typing import Any, Literal

import torch

__all__ = [
    "PRECISIONS",
    "Precision",
    "autocast_context",
    "cpu_info",
    "cpu_has_native_bf16",
    "resolve_device",
    "resolve_precision",
]

Precision = Literal["fp32", "bf16", "fp16"]
PRECISIONS = ("auto", "fp32", "bf16", "fp16")
_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def _probe(name: str) -> bool:
    # Private probes of ``torch.cpu``: present in the torch versions we support; absent means "not known to be there".
    fn = getattr(torch.cpu, name, None)
    try:
        return bool(fn()) if fn is not None else False
    except RuntimeError:
        return False


def cpu_has_native_bf16() -> bool:
    """Whether this CPU computes bf16 matrix products natively (AVX-512 BF16 or AMX tiles), as torch reports it."""
    return _probe("_is_avx512_bf16_supported") or _probe("_is_amx_tile_supported")


def cpu_info() -> dict[str, Any]:
    """The CPU's model name, torch's vector capability and whether bf16 is native (for benchmark records)."""
    name = platform.processor()
    with contextlib.suppress(OSError):
        with open("/proc/cpuinfo") as fh:
            name = next((ln.split(":", 1)[1].strip() for ln in fh if ln.startswith("model name")), name)
    return {
        "model": name or "unknown",
        "capability": torch.backends.cpu.get_cpu_capability(),
        "avx512_bf16": _probe("_is_avx512_bf16_supported"),
        "amx_tile": _probe("_is_amx_tile_supported"),
        "native_bf16": cpu_has_native_bf16(),
    }


def _mps_available() -> bool:
    mps = getattr(torch.backends, "mps", None)
    return bool(mps is not None and mps.is_available())


def resolve_device(name: str | torch.device | None = "auto") -> torch.device:
    """``"auto"`` (CUDA, else MPS, else CPU), ``"cpu"``, ``"cuda"``, ``"cuda:<i>"`` or ``"mps"`` as a checked device.

    Raises:
        ValueError: an unknown name, or a device this machine does not have (the message names it and the fix).
    """
    if isinstance(name, torch.device):
        name = str(name)
    text = "auto" if name is None else str(name).strip().lower()
    if text == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", torch.cuda.current_device())
        return torch.device("mps") if _mps_available() else torch.device("cpu")
    try:
        device = torch.device(text)
    except RuntimeError:
        raise ValueError(f"Unknown device {name!r}; use auto, cpu, cuda, cuda:<index> or mps") from None
    if device.type == "cpu":
        return device
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"Device {name!r}: CUDA is not available on this machine; use --device cpu (or auto)")
        count = torch.cuda.device_count()
        index = 0 if device.index is None else device.index
        if index >= count:
            raise ValueError(f"Device {name!r}: this machine has {count} CUDA device(s) (cuda:0..cuda:{count - 1})")
        return torch.device("cuda", index)
    if device.type == "mps":
        if not _mps_available():
            raise ValueError(f"Device {name!r}: Apple MPS is not available on this machine; use --device cpu (or auto)")
        return device
    raise ValueError(f"Unsupported device {name!r}; use auto, cpu, cuda, cuda:<index> or mps")


def resolve_precision(name: str | None, device: torch.device | str) -> Precision:
    """The precision to run in: ``"auto"`` picks bf16/fp16 only where native on ``device``, else fp32.

    An explicit ``"bf16"`` on a CPU without native bf16 (or ``"fp16"`` on a CPU) is honoured with a warning that
    it will be slower than fp32.

    Raises:
        ValueError: an unknown precision name.
    """
    device = torch.device(device)
    text = "auto" if name is None else str(name).strip().lower()
    if text not in PRECISIONS:
        raise ValueError(f"Unknown precision {name!r}; use one of {', '.join(PRECISIONS)}")
    if text == "auto":
        if device.type == "cuda":
            return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
        if device.type == "cpu" and cpu_has_native_bf16():
            return "bf16"
        return "fp32"
    if device.type == "cpu" and text == "bf16" and not cpu_has_native_bf16():
        warnings.warn(
            "precision bf16 on a CPU without native bf16 (no AVX-512 BF16 or AMX): it will run slower than fp32; "
            "use --precision auto to pick the fastest",
            RuntimeWarning,
            stacklevel=2,
        )
    if device.type == "cpu" and text == "fp16" and not _probe("_is_amx_fp16_supported"):
        warnings.warn(
            "precision fp16 on a CPU without native fp16 (no AMX-FP16): it will run slower than fp32; "
            "use --precision auto to pick the fastest",
            RuntimeWarning,
            stacklevel=2,
        )
    return text  # type: ignore[return-value]


def autocast_context(precision: str, device: torch.device | str = "cpu") -> contextlib.AbstractContextManager:
    """``torch.autocast`` to bf16/fp16 on ``device`` (matmuls reduced, norms and softmax kept in fp32); fp32: no-op.

    Raises:
        ValueError: a precision other than fp32, bf16 or fp16 (resolve ``"auto"`` with :func:`resolve_precision`).
    """
    if precision == "fp32":
        return contextlib.nullcontext()
    if precision not in _DTYPES:
        raise ValueError(f"precision must be 'fp32', 'bf16' or 'fp16', got {precision!r}")
    return torch.autocast(torch.device(device).type, dtype=_DTYPES[precision])
