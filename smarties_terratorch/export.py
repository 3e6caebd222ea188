"""Export the SMARTIES encoder for a fixed band list: ``torch.export`` (``.pt2``) or ONNX (``smarties export``).

The band list is resolved at export time, so the spectrum-aware projection is a constant ``[D, C*16*16]`` matrix
and the exported graph is a plain ViT: one GEMM patch embedding, the (bicubically resampled) position embedding
and the blocks. Batch and spatial size are dynamic (H and W any multiple of 16 from 32 to ``--max-size``).

Example::

    smarties export --arch smarties_vit_base_patch16 --bands B02,B03,B04,B08 --sensor S2-L2A \
        --weights smarties-v1-vitb.safetensors --format onnx --out smarties_b_rgbn.onnx

With ``--stats`` (or a model built with ``stats=``) the exported program normalises its raw input itself, with the
SMARTIES two-step rule, as the model does.

The file appears under its name only once complete (an existing one needs ``--overwrite``); ``--device`` traces
on that device (the program then expects inputs there).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Literal

import torch
from torch import nn

from .device import resolve_device
from .io import atomic_path, check_output
from .models import vit
from .spectrum import ResolvedBands
from .normalization import SmartiesNormalize

__all__ = ["FixedBandEncoder", "check_sizes", "export_encoder", "main"]

Output = Literal["tokens", "features", "dense"]


class FixedBandEncoder(nn.Module):
    """A :class:`~smarties_terratorch.models.vit.SmartiesViT` bound to one band list, for export.

    Args:
        model: the encoder.
        bands: the band list (anything ``model.resolve`` accepts; ``None`` = the model's own bands).
        output: ``"tokens"`` (final normed tokens ``[B, 1 + h*w, D]``, CLS first), ``"features"`` (pooled
            ``[B, D]``, the model's ``forward_head(pre_logits=True)``) or ``"dense"`` (patch tokens as
            ``[B, D, h, w]``).

    A model that normalises its input (``stats=``) keeps doing so: the exported graph starts with the same
    normalisation (without the units check, which looks at values on the host).
    """

    def __init__(self, model: vit.SmartiesViT, bands: Any = None, output: Output = "tokens") -> None:
        super().__init__()
        if output not in ("tokens", "features", "dense"):
            raise ValueError(f"output must be 'tokens', 'features' or 'dense', got {output!r}")
        self.model = model.eval()
        self.bands: ResolvedBands = model.resolve(bands)
        self.output = output
        weight, bias = model.spectrum_projection._fuse(self.bands)
        # Folded once here: the exported graph holds the C-band projection as a constant, no per-range weights.
        self.register_buffer("proj_weight", weight.detach().clone(), persistent=False)
        self.register_buffer("proj_bias", bias.detach().clone(), persistent=False)
        norm = model.input_norm
        if norm is not None and self.bands.spectra != model.default_bands.spectra:
            raise ValueError(
                f"The model normalises its input with {norm.source} for its bands "
                f"({', '.join(model.default_bands.names)}); export it for those bands (bands=None)."
            )
        self.normalize = (
            SmartiesNormalize(norm.mean, norm.std, norm.p1, norm.p99, nan_to=norm.nan_to, bands=norm.bands)
            if norm is not None
            else None
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        m, p = self.model, self.model.patch_size
        h, w = x.shape[-2] // p, x.shape[-1] // p
        if self.normalize is not None:
            x = self.normalize(x)
        # Patchify by reshape/permute (exports cleanly with symbolic sizes, unlike einops' pattern parsing).
        patches = x.reshape(x.shape[0], x.shape[1], h, p, w, p).permute(0, 2, 4, 1, 3, 5).flatten(3).flatten(1, 2)
        tokens = nn.functional.linear(patches, self.proj_weight, self.proj_bias)
        tokens = torch.cat([m.cls_token.expand(tokens.shape[0], -1, -1), tokens], dim=1)
        tokens = tokens + _resample_pos_embed(m.pos_embed, m.grid_size, (h, w))
        tokens = m.norm(m.blocks(tokens))
        if self.output == "features":
            return m.forward_head(tokens, pre_logits=True)
        if self.output == "dense":
            return tokens[:, 1:].unflatten(1, (h, w)).permute(0, 3, 1, 2)
        return tokens


def _resample_pos_embed(pos: torch.Tensor, old: tuple[int, int], new: tuple[Any, Any]) -> torch.Tensor:
    """Bicubic resize of the grid part of ``pos [1, 1 + h*w, D]`` to ``new``, CLS row kept (the eager model's rule,
    written without a size-equality branch so that export keeps H and W symbolic)."""
    grid = pos[:, 1:].reshape(1, old[0], old[1], -1).permute(0, 3, 1, 2)
    grid = nn.functional.interpolate(grid, size=new, mode="bicubic", align_corners=False)
    return torch.cat([pos[:, :1], grid.flatten(2).transpose(1, 2)], dim=1)


def _dynamic_shapes(max_size: int, patch: int) -> dict[str, dict[int, Any]]:
    from torch.export import Dim

    # At least 2 patches per side: torch.export specialises sizes 0 and 1, so a grid of 1 cannot stay symbolic.
    h, w = Dim("h", min=2, max=max_size // patch), Dim("w", min=2, max=max_size // patch)
    return {"x": {0: Dim("batch", min=1, max=4096), 2: patch * h, 3: patch * w}}


def check_sizes(example_size: int, max_size: int, patch: int = 16) -> None:
    """Refuse export sizes the dynamic shapes cannot hold: sides are multiples of ``patch`` of at least 2 patches.

    Raises:
        ValueError: naming the size and the fix.
    """
    low = 2 * patch  # torch.export specialises sizes 0 and 1, so a grid side needs at least 2 patches
    if max_size < low or max_size % patch:
        raise ValueError(f"--max-size {max_size}: must be a multiple of {patch} and at least {low}")
    if example_size < low or example_size % patch:
        raise ValueError(f"--img-size {example_size}: must be a multiple of {patch} and at least {low} (two patches)")
    if example_size > max_size:
        raise ValueError(f"--img-size {example_size} is larger than --max-size {max_size}; raise --max-size")


def export_encoder(
    model: vit.SmartiesViT,
    path: str | Path,
    *,
    bands: Any = None,
    fmt: Literal["onnx", "torch.export"] = "torch.export",
    output: Output = "tokens",
    example_size: int = 224,
    max_size: int = 2048,
    dynamic: bool = True,
    device: torch.device | str = "cpu",
    overwrite: bool = False,
) -> Path:
    """Export ``model`` bound to ``bands`` to ``path``; returns the path.

    ``torch.export`` writes an ``ExportedProgram`` (``torch.export.load(path).module()(x)``); ``onnx`` uses the
    dynamo-based ``torch.onnx.export`` (opset 18+) with input ``x`` and output ``y``. Both keep batch, H and W
    dynamic when ``dynamic`` (H, W: multiples of 16 from 32 up to ``max_size``). Run in fp32; for bf16 inference
    cast the inputs/weights in the runtime. The file is written under a temporary name and renamed when complete.

    Raises:
        ValueError: an unknown format or output, or export sizes the dynamic shapes cannot hold.
        FileExistsError: ``path`` exists and ``overwrite`` is False.
    """
    if fmt not in ("onnx", "torch.export"):
        raise ValueError(f"format must be 'onnx' or 'torch.export', got {fmt!r}")
    check_sizes(example_size, max_size, model.patch_size)
    check_output(path, overwrite=overwrite)
    device = torch.device(device)
    wrapper = FixedBandEncoder(model, bands, output).eval().to(device)
    x = torch.randn(2, len(wrapper.bands), example_size, example_size, device=device)
    dyn = _dynamic_shapes(max_size, model.patch_size) if dynamic else None
    path = Path(path)
    with atomic_path(path) as tmp:
        if fmt == "torch.export":
            program = torch.export.export(wrapper, (x,), dynamic_shapes=dyn)
            torch.export.save(program, tmp)
        else:
            onnx_program = torch.onnx.export(
                wrapper, (x,), dynamo=True, dynamic_shapes=dyn, input_names=["x"], output_names=["y"], verbose=False
            )
            onnx_program.save(str(tmp))
    return path


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="smarties export", description=main.__doc__)
    p.add_argument("--format", choices=["onnx", "torch.export"], default="torch.export", dest="fmt")
    p.add_argument("--out", required=True, help="output file (.onnx or .pt2)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out (once the new file is complete)")
    p.add_argument("--bands", required=True, help="comma-separated band names, one per input channel")
    p.add_argument("--sensor", help="sensor preset for bare band names (e.g. S2-L2A)")
    p.add_argument("--stats", help="normalise inside the exported program: a statistics table name (e.g. "
                   "S2-L2A) or a JSON/YAML file with mean/std/p1/p99 lists (default: it takes normalised input)")  # fmt: skip
    p.add_argument("--arch", default="smarties_vit_base_patch16", choices=list(vit.VARIANTS))
    p.add_argument("--weights", help="local checkpoint or declared weights tag (default: random init, with a warning)")
    p.add_argument("--output", choices=["tokens", "features", "dense"], default="tokens")
    p.add_argument("--img-size", type=int, default=224, help="example input side used for tracing (default 224)")
    p.add_argument("--max-size", type=int, default=2048, help="largest dynamic H/W (default 2048)")
    p.add_argument("--static", action="store_true", help="fix batch 2 and --img-size instead of dynamic shapes")
    p.add_argument("--device", default="cpu", help="device to trace on: cpu (default), auto, cuda, cuda:<i> or mps")
    return p


def _export(args: argparse.Namespace) -> int:
    bands = [b.strip() for b in args.bands.split(",") if b.strip()]
    if not bands:
        raise ValueError("--bands names no band")
    check_sizes(args.img_size, args.max_size)
    device = resolve_device(args.device)
    local = args.weights is not None and Path(args.weights).is_file()
    # Cheap checks first: nothing is loaded or traced for an output that would be refused.
    check_output(args.out, [args.weights] if local else [], overwrite=args.overwrite)
    model = getattr(vit, args.arch)(
        bands=bands, sensor=args.sensor, ckpt_path=args.weights if local else None, pretrained=args.weights or False,
        stats=args.stats,
    )  # fmt: skip
    if args.weights is None:
        print("smarties export: WARNING: no --weights given, exporting a randomly initialised model", file=sys.stderr)
    path = export_encoder(
        model, args.out, fmt=args.fmt, output=args.output, example_size=args.img_size, max_size=args.max_size,
        dynamic=not args.static, device=device, overwrite=args.overwrite,
    )  # fmt: skip
    print(json.dumps({"out": str(path), "format": args.fmt, "bands": list(model.resolve(None).names),
                      "stats": args.stats, "device": str(device)}))  # fmt: skip
    return 0


def main(argv: list[str]) -> int:
    """``smarties export``: write the encoder for a fixed band list as ONNX or a torch.export program."""
    from .scene.cli import handle_termination

    with handle_termination("smarties export"):
        args = _parser().parse_args(argv)
        try:
            return _export(args)
        except KeyboardInterrupt:
            print("smarties export: interrupted; nothing was written", file=sys.stderr)
            return 130
        except (ValueError, OSError, ImportError) as err:
            print(f"smarties export: error: {err}", file=sys.stderr)
            return 2
