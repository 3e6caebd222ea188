#!/usr/bin/env python
"""Throughput of a TerraTorch UPerNet segmentation model: SMARTIES-B vs TerraTorch's own DOFA-B, same input.

Both models are built by TerraTorch's ``EncoderDecoderFactory`` exactly as a user's YAML would build them, with
the same necks and decoder, and differ only in the backbone:

* ``smarties_vit_base_patch16`` (``backbone_bands``), and
* ``dofa_base_patch16_224`` (``backbone_model_bands``, ``backbone_pretrained: false``, ``backbone_out_indices``
  = all 12 blocks so the same ``SelectIndices`` picks the same blocks of both),

then necks ``SelectIndices [3, 5, 7, 11]`` -> ``ReshapeTokensToImage`` -> ``LearnedInterpolateToPyramidal``,
``UperNetDecoder`` (256 channels), frozen backbone (``freeze_encoder()``, as ``freeze_backbone: true``), ``eval()``,
fp32, ``torch.inference_mode``; batch 8 of 6 HLS bands (BLUE, GREEN, RED, NIR_NARROW, SWIR_1, SWIR_2) at 224x224.

Timing: one process, one shared input; each model gets its warm-up calls, then the timed calls alternate between
the two models (A B B A A B ...) so that a change in machine load hits both alike; the figure is the median of
the repeats. Prints images/s of both, the ratio SMARTIES / DOFA (target >= 1.0) and PASS/FAIL.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from typing import Any

from _common import count_flops, loadavg

HLS_BANDS = ["BLUE", "GREEN", "RED", "NIR_NARROW", "SWIR_1", "SWIR_2"]
NECK_INDICES = [3, 5, 7, 11]
MODELS = {
    "smarties": ("SMARTIES-B  smarties_vit_base_patch16", "smarties_vit_base_patch16"),
    "dofa": ("DOFA-B      dofa_base_patch16_224", "dofa_base_patch16_224"),
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--batch", type=int, default=8, help="batch size (default 8)")
    p.add_argument("--repeats", type=int, default=7, help="timed calls per model (default 7)")
    p.add_argument("--warmup", type=int, default=2, help="untimed calls per model before timing (default 2)")
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="torch intra-op threads")
    p.add_argument("--num-classes", type=int, default=2, help="segmentation classes (default 2, burn scars)")
    p.add_argument("--decoder-channels", type=int, default=256, help="UperNetDecoder channels (default 256)")
    p.add_argument("--target", type=float, default=1.0, help="PASS if SMARTIES/DOFA images/s >= this (default 1.0)")
    p.add_argument(
        "--encoders", action="store_true", help="also time the two backbones alone (same input, same protocol)"
    )
    p.add_argument("--no-flops", action="store_true", help="skip the FLOP count (one batch-1 call per model)")
    p.add_argument(
        "--quick", action="store_true", help="smoke test: batch 1, 1 warm-up, 1 repeat, no FLOP count (~1 min)"
    )
    p.add_argument("--json", metavar="PATH", help="also write the configuration and raw timings as JSON")
    args = p.parse_args(argv)
    if args.quick:
        args.batch, args.warmup, args.repeats, args.no_flops = 1, 1, 1, True
    if args.repeats < 1 or args.warmup < 0 or args.batch < 1:
        p.error("--repeats and --batch must be >= 1, --warmup >= 0")
    return args


def build_models(args: argparse.Namespace) -> dict[str, Any]:
    from terratorch.models import EncoderDecoderFactory

    import smarties_terratorch  # noqa: F401  (registers the SMARTIES backbones)

    common = {
        "necks": [
            {"name": "SelectIndices", "indices": NECK_INDICES},
            {"name": "ReshapeTokensToImage"},
            {"name": "LearnedInterpolateToPyramidal"},
        ],
        "decoder": "UperNetDecoder",
        "decoder_channels": args.decoder_channels,
        "num_classes": args.num_classes,
    }
    backbone_args = {
        "smarties": {"backbone_bands": HLS_BANDS, "backbone_pretrained": False},
        "dofa": {
            "backbone_model_bands": HLS_BANDS,
            "backbone_pretrained": False,
            "backbone_out_indices": list(range(12)),
        },
    }
    models = {}
    for key, (_, backbone) in MODELS.items():
        model = EncoderDecoderFactory().build_model(
            task="segmentation", backbone=backbone, **backbone_args[key], **common
        )
        model.freeze_encoder()  # what freeze_backbone: true does
        models[key] = model.eval()
    return models


def timed(fn: Any, x: Any) -> tuple[float, float]:
    """Wall and process-CPU seconds of one call."""
    c0, t0 = time.process_time(), time.perf_counter()
    fn(x)
    return time.perf_counter() - t0, time.process_time() - c0


def measure(fns: dict[str, Any], x: Any, args: argparse.Namespace, label: str) -> dict[str, dict[str, Any]]:
    import torch

    out: dict[str, dict[str, Any]] = {k: {"wall_s": [], "cpu_s": []} for k in fns}
    with torch.inference_mode():
        for key, fn in fns.items():
            print(f"  {label}: warm-up {key} ({args.warmup} call(s)) ...", flush=True)
            for _ in range(args.warmup):
                fn(x)
        keys = list(fns)
        for r in range(args.repeats):
            order = keys if r % 2 == 0 else keys[::-1]  # A B, B A, A B, ...
            for key in order:
                wall, cpu = timed(fns[key], x)
                out[key]["wall_s"].append(wall)
                out[key]["cpu_s"].append(cpu)
            print(
                f"  {label}: repeat {r + 1}/{args.repeats}: "
                + ", ".join(f"{k} {out[k]['wall_s'][-1]:.2f} s" for k in keys),
                flush=True,
            )
    for r in out.values():
        r["median_s"] = statistics.median(r["wall_s"])
        r["min_s"] = min(r["wall_s"])
        r["images_per_s"] = args.batch / r["median_s"]
        r["cpu_per_wall"] = sum(r["cpu_s"]) / sum(r["wall_s"])
    return out


def paired_ratio(res: dict[str, dict[str, Any]]) -> float:
    """Median over repeats of DOFA time / SMARTIES time, the two calls of a repeat being adjacent in time."""
    return statistics.median(d / s for s, d in zip(res["smarties"]["wall_s"], res["dofa"]["wall_s"]))


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from importlib.metadata import version

    import torch

    tt_version = version("terratorch")
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    load_start = loadavg()
    print(
        f"TerraTorch UPerNet throughput | batch {args.batch} x 6 HLS bands x 224x224, fp32, inference_mode, eval, "
        f"frozen backbone | threads {args.threads} (cpu_count {os.cpu_count()}) | torch {torch.__version__}, "
        f"terratorch {tt_version}" + (" | QUICK smoke mode" if args.quick else "")
    )
    print(
        f"necks SelectIndices {NECK_INDICES} -> ReshapeTokensToImage -> LearnedInterpolateToPyramidal; "
        f"UperNetDecoder({args.decoder_channels}); warm-up {args.warmup}, median of {args.repeats} interleaved repeats"
    )
    if load_start is not None:
        print(f"load average at start: {load_start[0]:.2f} {load_start[1]:.2f} {load_start[2]:.2f}")
        if load_start[0] > 0.5:
            print("WARNING: the machine is busy; absolute figures are pessimistic (the interleaved ratio less so).")
    print(flush=True)
    t_start = time.perf_counter()

    models = build_models(args)
    x = torch.randn(args.batch, len(HLS_BANDS), 224, 224)
    params = {
        k: {
            "encoder": sum(p.numel() for p in m.encoder.parameters()),
            "total": sum(p.numel() for p in m.parameters()),
            "trainable": sum(p.numel() for p in m.parameters() if p.requires_grad),
        }
        for k, m in models.items()
    }
    assert all(params[k]["trainable"] == params[k]["total"] - params[k]["encoder"] for k in models), "not frozen"

    with torch.inference_mode():
        shapes = {k: tuple(m(x[:1]).output.shape) for k, m in models.items()}
    assert len(set(shapes.values())) == 1, shapes

    flops: dict[str, dict[str, float]] = {}
    if not args.no_flops:
        print("  counting FLOPs (batch 1) ...", flush=True)
        for k, m in models.items():
            with torch.inference_mode():
                flops[k] = {
                    "model": count_flops(lambda m=m: m(x[:1])),
                    "encoder": count_flops(lambda m=m: m.encoder(x[:1])),
                }

    full = measure({k: (lambda t, m=m: m(t)) for k, m in models.items()}, x, args, "UPerNet")
    enc = None
    if args.encoders:
        enc = measure({k: (lambda t, m=m: m.encoder(t)) for k, m in models.items()}, x, args, "encoder")
    load_end = loadavg()

    print(f"\noutput shape {shapes['smarties'][1:]} per image (both)")
    head = (
        f"{'model':46s} {'ms/batch':>9s} {'min ms':>9s} {'img/s':>7s} {'cpu/wall':>8s} {'params':>8s} "
        f"{'GFLOP/img':>9s}"
    )
    print(head)
    print("-" * len(head))
    for part, res in (("UPerNet", full), ("encoder only", enc)):
        if res is None:
            continue
        for k, r in res.items():
            gf = flops.get(k, {}).get("model" if part == "UPerNet" else "encoder")
            n = params[k]["total" if part == "UPerNet" else "encoder"]
            label = MODELS[k][0] + ("" if part == "UPerNet" else " (enc)")
            print(
                f"{label:46s} {r['median_s'] * 1e3:9.1f} {r['min_s'] * 1e3:9.1f} {r['images_per_s']:7.2f} "
                f"{r['cpu_per_wall']:8.2f} {n / 1e6:7.1f}M {'' if gf is None else f'{gf / 1e9:9.1f}'}"
            )
    ratio = full["smarties"]["images_per_s"] / full["dofa"]["images_per_s"]
    paired = paired_ratio(full)
    ok = ratio >= args.target
    print(f"\nthroughput SMARTIES-B / DOFA-B (UPerNet, frozen backbone): {ratio:.3f}x  "
          f"(target >= {args.target:.1f}x)  {'PASS' if ok else 'FAIL'}")
    print(f"  median of the per-repeat ratios (each pair timed back to back, robust to load drift): {paired:.3f}x")
    enc_ratio = None
    if enc is not None:
        enc_ratio = enc["smarties"]["images_per_s"] / enc["dofa"]["images_per_s"]
        print(f"throughput SMARTIES-B / DOFA-B (backbones alone): {enc_ratio:.3f}x  "
              f"(per-repeat median {paired_ratio(enc):.3f}x)")
    low = {k: r["cpu_per_wall"] for k, r in full.items() if r["cpu_per_wall"] < 0.8 * args.threads}
    if args.threads > 1 and low and not args.quick:
        print("WARNING: cpu/wall below 0.8 x threads (" + ", ".join(f"{k} {v:.2f}" for k, v in low.items())
              + "): other processes competed for the cores; absolute figures are unreliable.")
    if load_end is not None:
        print(f"load average at end: {load_end[0]:.2f} {load_end[1]:.2f} {load_end[2]:.2f}")
    print(f"total wall time {time.perf_counter() - t_start:.0f} s")

    if args.json:
        payload = {
            "config": {**vars(args), "bands": HLS_BANDS, "neck_indices": NECK_INDICES, "size": 224},
            "environment": {
                "torch": torch.__version__,
                "terratorch": tt_version,
                "python": platform.python_version(),
                "cpu_count": os.cpu_count(),
                "loadavg_start": load_start,
                "loadavg_end": load_end,
            },
            "params": params,
            "flops_per_image": flops,
            "uper": full,
            "encoders": enc,
            "ratio": ratio,
            "paired_ratio": paired,
            "encoder_ratio": enc_ratio,
            "target": args.target,
            "pass": ok,
        }
        os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
        with open(args.json, "w") as f:
            json.dump(payload, f, indent=2)
        print(f"JSON written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
