"""CPU benchmark: a 100-epoch linear probe with cached features vs re-encoding every image every epoch.

The paper table's EuroSAT linear-probe row (``configs/eurosat_linprobe.yaml``: frozen encoder, BatchNorm + Linear
head, step schedule, no augmentation) runs on a small generated EuroSAT fixture in the real on-disk layout, through
the same code path as ``smarties bench run`` (``smarties_terratorch.bench.run.execute``), twice per round:

* ``uncached``: the encoder runs on every training image at every epoch (what a plain ``terratorch fit`` does);
* ``cached``: every image is encoded once (into a fresh cache folder, so the encoding is part of the time), then the
  head trains on the stored features (``smarties_terratorch.tasks.cached``).

Rounds alternate the order (uncached first, then cached first, ...) so that drift of a shared machine hits both
sides; the medians of the wall times give the speed-up. Same seed on both sides: the metric difference is reported
too (the cached run must equal the uncached one up to floating-point summation order).

The encoder is the paper's SMARTIES ViT-B/16 (``smarties_vit_base_patch16``) with random weights: the encoding cost
is the real model's; the accuracy on random fixture pixels means nothing. ``--arch smarties_vit_tiny_patch16`` is a
quicker check (encoding is cheaper there, so the speed-up is smaller). Wall times depend on the machine's load
(other processes competing for the cores slow both sides, unevenly): the results record the load average.
Run::

    python benchmarks/bench_cached_probe.py            # writes benchmarks/results_cached_probe.json
    python benchmarks/bench_cached_probe.py --help
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
import yaml
from _common import cpu_name, loadavg

from smarties_terratorch.bench.config import build_row_config
from smarties_terratorch.bench.run import execute, versions
from smarties_terratorch.bench.table import Job, load_table
from smarties_terratorch.io import write_text
from smarties_terratorch.testing import make_fixture

ROW = "eurosat_linprobe"


def build_config(folder: Path, arch: str, epochs: int, per_class: int, batch_size: int) -> tuple[Path, int, int]:
    """The row's config on a fresh fixture with ``arch``; returns the config file and the train / val sizes."""
    root = folder / "eurosat"
    make_fixture("eurosat", root, per_class=per_class)
    table = load_table()
    row = next(r for r in table.rows if r.id == ROW)
    prepared = build_row_config(Job(row, "tiny", "smoke"), table, folder / "run", fixtures=lambda name: root)
    cfg = copy.deepcopy(prepared.config)
    cfg["model"]["init_args"]["model_args"]["backbone"] = arch  # full depth, random weights
    cfg["trainer"].pop("fast_dev_run")
    # the row's own schedule: max_epochs and an evaluation at the end, as the authors' probe
    cfg["trainer"].update(max_epochs=epochs, check_val_every_n_epoch=epochs, num_sanity_val_steps=0)
    cfg["data"]["init_args"]["batch_size"] = batch_size
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump(cfg), encoding="utf-8")
    splits = root / "eval_splits"
    sizes = [len((splits / f"eurosat-{s}.txt").read_text().split()) for s in ("train", "val")]
    return path, sizes[0], sizes[1]


def run_once(config: Path, cached: bool, cache_dir: Path) -> dict[str, Any]:
    row = next(r for r in load_table().rows if r.id == ROW)
    options = {"cache": cached, "cache_dir": str(cache_dir), "weights_sha256": None}
    start = time.perf_counter()
    measured = execute(Job(row, "tiny", "smoke", options), config)
    seconds = time.perf_counter() - start
    return {
        "wall_s": round(seconds, 3),
        "accuracy": measured["raw_value"],
        "val_loss": measured["metrics"].get("val/loss"),
        "cache_used": measured["feature_cache"]["used"],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--arch", default="smarties_vit_base_patch16", help="encoder architecture (random weights)")
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--per-class", type=int, default=2, help="fixture images per class (half train, half val)")
    parser.add_argument("--batch-size", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds (each runs both sides)")
    parser.add_argument("--out", type=Path, default=Path(__file__).with_name("results_cached_probe.json"))
    args = parser.parse_args(argv)

    load_start = loadavg()
    with tempfile.TemporaryDirectory(prefix="bench_cached_probe_") as tmp:
        folder = Path(tmp)
        config, n_train, n_val = build_config(folder, args.arch, args.epochs, args.per_class, args.batch_size)
        runs: dict[str, list[dict[str, Any]]] = {"uncached": [], "cached": []}
        for r in range(args.rounds):
            order = ("uncached", "cached") if r % 2 == 0 else ("cached", "uncached")
            for side in order:
                result = run_once(config, side == "cached", folder / f"cache-{r}")
                runs[side].append(result)
                line = f"round {r + 1}/{args.rounds} {side:>8}: {result['wall_s']:.1f} s"
                print(f"{line}, accuracy {result['accuracy']:.4f}")
                sys.stdout.flush()

    median = {side: statistics.median(x["wall_s"] for x in values) for side, values in runs.items()}
    diffs = [abs(u["accuracy"] - c["accuracy"]) for u, c in zip(runs["uncached"], runs["cached"], strict=True)]
    loss_diffs = [abs(u["val_loss"] - c["val_loss"]) for u, c in zip(runs["uncached"], runs["cached"], strict=True)]
    result = {
        "benchmark": "linear probe (paper-table row eurosat_linprobe), cached features vs re-encoding every epoch",
        "cpu": cpu_name(),
        "torch_threads": torch.get_num_threads(),
        "loadavg_at_start": load_start,
        "loadavg_at_end": loadavg(),
        "versions": versions(),
        "setup": {
            "encoder": f"{args.arch}, random weights (frozen)",
            "epochs": args.epochs,
            "train_images": n_train,
            "val_images": n_val,
            "batch_size": args.batch_size,
            "rounds": args.rounds,
            "timing": "wall time of smarties_terratorch.bench.run.execute (config parse, model build, fit, final validate); cached side "
            "includes encoding every image once into an empty cache",
        },
        "runs": runs,
        "median_wall_s": median,
        "speedup_median": round(median["uncached"] / median["cached"], 2),
        "metric": "val top-1 accuracy (fraction), same seed on both sides",
        "max_abs_accuracy_difference": max(diffs),
        "max_abs_val_loss_difference": max(loss_diffs),
    }
    write_text(args.out, json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: result[k] for k in ("median_wall_s", "speedup_median", "max_abs_accuracy_difference")}))
    print(f"Results: {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
