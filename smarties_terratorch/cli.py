"""The ``smarties`` console script.

Subcommands:
    demo      embed the real BigEarthNet S2/S1 patches shipped by ``bigearthnet-common`` and print statistics
    bands     show how a band list resolves to SMARTIES projections
    weights   list the declared released weights
    config    print or copy a config shipped with the package (``smarties config demo -o demo.yaml``)
    pretrain  MAE pretraining (a LightningCLI: ``smarties pretrain fit -c configs/pretrain_demo.yaml``)
    embed     tiled feature extraction over GeoTIFF scenes (one scene or a catalogue)
    predict   tiled segmentation of GeoTIFF scenes with a fine-tuned TerraTorch checkpoint
    export    export the encoder with torch.export or ONNX
    bench     run / report the SMARTIES paper table

The last five live with their feature (see ``_DELEGATED``) and parse their own arguments, so that e.g. the
LightningCLI behind ``pretrain`` keeps its ``--print_config`` and ``--trainer.*`` handling.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence

__all__ = ["main"]

# subcommand -> (module, function taking the remaining argv and returning an exit code, one-line help)
_DELEGATED: dict[str, tuple[str, str, str]] = {
    "pretrain": ("smarties_terratorch.tasks.pretrain", "cli_main", "MAE pretraining (LightningCLI: fit -c CONFIG)"),
    "embed": ("smarties_terratorch.scene.cli", "embed_main", "tiled features of GeoTIFF scenes or catalogues"),
    "predict": ("smarties_terratorch.scene.cli", "predict_main", "tiled segmentation of GeoTIFF scenes or catalogues"),
    "export": ("smarties_terratorch.export", "main", "export the encoder (torch.export or ONNX)"),
    "bench": ("smarties_terratorch.bench.cli", "main", "run and report the SMARTIES paper table"),
    "data": ("smarties_terratorch.download", "main", "download the evaluation datasets and the authors' split files"),
    "stats": ("smarties_terratorch.stats", "main", "SMARTIES normalisation statistics of your rasters"),
}


def __getattr__(name: str) -> object:
    # ``ARCHS`` comes from the variant table, which imports torch: only when asked for, so `smarties --help` is fast.
    if name == "ARCHS":
        from .models.vit import default_cfgs

        return tuple(default_cfgs)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _stats(name: str, t: "torch.Tensor") -> str:  # noqa: F821 - torch is imported lazily
    t = t.float()
    return (
        f"{name:<34} shape {str(tuple(t.shape)):<20} mean {t.mean():+.4f}  std {t.std():.4f}  "
        f"min {t.min():+.3f}  max {t.max():+.3f}  finite {bool(t.isfinite().all())}"
    )


def _demo(args: argparse.Namespace) -> int:
    import numpy as np
    import torch

    from . import models
    from .datasets.bigearthnet import read_bigearthnet_s1, read_bigearthnet_s2, read_labels, to_bigearthnet19
    from .normalization import SmartiesNormalize, resize_to
    from .sample_data import bigearthnet_examples

    torch.manual_seed(args.seed)
    examples = bigearthnet_examples(args.cache_dir)
    print(f"Real data: {len(examples)} paired BigEarthNet v1.0 patches (S2 L2A + S1 GRD) from bigearthnet-common")
    s2 = torch.from_numpy(np.stack([read_bigearthnet_s2(e.s2_dir)[0] for e in examples]))
    s1 = torch.from_numpy(np.stack([read_bigearthnet_s1(e.s1_dir)[0] for e in examples]))
    print(_stats("raw S2 (reflectance x 1e4)", s2))
    print(_stats("raw S1 (dB)", s1))
    # SMARTIES preprocessing: percentile clip + standardise with the released statistics, then bicubic to 224.
    s2 = resize_to(SmartiesNormalize.from_stats("S2-L2A")(s2), args.size)
    s1 = resize_to(SmartiesNormalize.from_stats("S1-GRD")(s1), args.size)

    archs = __getattr__("ARCHS")
    if args.arch not in archs:
        raise ValueError(f"Unknown --arch {args.arch!r}; choose one of {', '.join(archs)}")
    model = getattr(models, args.arch)(sensor="S2-L2A", ckpt_path=args.weights).eval()
    source = args.weights or "random initialisation (no --weights): shapes and pipeline only, features carry no meaning"
    print(f"\nModel: {args.arch}, {sum(p.numel() for p in model.parameters()):,} parameters; weights: {source}")
    print(model.resolve(None).describe())
    print()
    start = time.perf_counter()
    with torch.inference_mode():
        cls = model(s2)
        dense = model.forward_dense(s2)
        blocks = model.forward_intermediates(s2, indices=4, intermediates_only=True)
        s1_feat = model(s1, sensor="S1")
        early = model.forward_multimodal({"S2-L2A": s2, "S1": s1}, fusion="early")
        late = model.forward_multimodal({"S2-L2A": s2, "S1": s1}, fusion="late")
    elapsed = time.perf_counter() - start
    print(_stats("S2 CLS features", cls))
    print(_stats("S2 dense last-block tokens", dense))
    for i, feat in enumerate(blocks):
        print(_stats(f"S2 block {len(model.blocks) - len(blocks) + i} map", feat))
    print(_stats("S1 CLS features", s1_feat))
    print(_stats("S1+S2 early fusion", early))
    print(_stats("S1+S2 late fusion", late))
    print(f"6 forward passes over {len(examples)} patches at {args.size}x{args.size}: {elapsed:.2f} s")
    normed = torch.nn.functional.normalize(cls, dim=1)
    print("\nCosine similarity of S2 CLS features between patches:")
    print(np.array2string((normed @ normed.T).numpy(), precision=3, suppress_small=True))
    print("\nPatches and BigEarthNet-19 labels:")
    for e in examples:
        labels = read_labels(e.s2_dir)
        print(f"  {e.name}: {int(to_bigearthnet19(labels).sum())} of 19 classes; {', '.join(labels)}")
    return 0


def _bands(args: argparse.Namespace) -> int:
    from .spectrum import resolve_bands

    print(
        resolve_bands(
            args.bands, sensor=args.sensor, weighting=args.weighting, allow_duplicates=args.allow_duplicates
        ).describe()
    )
    return 0


def _weights(args: argparse.Namespace) -> int:
    from .models.vit import default_cfgs  # noqa: F401 - declares (registers) the encoders' weights
    from .weights import WEIGHTS

    for w in WEIGHTS.values():
        rev = w.revision or "revision not pinned yet"
        print(f"{w.name:<42} {w.arch:<28} {w.repo_id}/{w.filename} ({rev})")
    return 0


def shipped_configs() -> dict[str, "Path"]:  # noqa: F821 - pathlib is imported lazily
    """The TerraTorch / LightningCLI configs shipped in the package, by name (``demo``, ``examples/own_data_...``)."""
    from pathlib import Path

    root = Path(__file__).resolve().parent / "configs"
    return {p.relative_to(root).with_suffix("").as_posix(): p for p in sorted(root.rglob("*.yaml"))}


def _config(args: argparse.Namespace) -> int:
    import difflib

    configs = shipped_configs()
    if args.list or args.name is None:
        print("\n".join(configs))
        return 0
    name = args.name.removeprefix("configs/").removesuffix(".yaml")
    if name not in configs:
        close = difflib.get_close_matches(name, configs, n=3)
        hint = f"did you mean {', '.join(close)}? " if close else ""
        raise ValueError(f"no shipped config {args.name!r}; {hint}`smarties config --list` shows them all")
    text = configs[name].read_text(encoding="utf-8")
    if args.output is None:
        sys.stdout.write(text)
        return 0
    from .io.writer import check_output, write_text

    out = check_output(args.output, overwrite=args.overwrite)
    write_text(out, text)
    print(f"wrote {out}", file=sys.stderr)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="smarties", description="SMARTIES for TerraTorch: tools.")
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo", help="embed the real BigEarthNet example patches and print feature statistics")
    demo.add_argument("--arch", default="smarties_vit_base_patch16", help="a variant of the model table "
                      "(smarties_vit_base_patch16, smarties_vit_large_patch16, ...)")  # fmt: skip
    demo.add_argument("--weights", default=None, help="official-layout checkpoint (e.g. smarties-v1-vitb.safetensors)")
    demo.add_argument("--size", type=int, default=224, help="model input size (multiple of 16)")
    demo.add_argument("--cache-dir", default=None, help="where to unpack the examples (default: $SMARTIES_CACHE)")
    demo.add_argument("--seed", type=int, default=0)
    demo.set_defaults(func=_demo)

    bands = sub.add_parser("bands", help="show how bands resolve to SMARTIES projections")
    bands.add_argument("bands", nargs="?", default=None, help="comma-separated band list, e.g. B02,B03,L8:B10,865nm")
    bands.add_argument("--sensor", default=None, help="sensor preset for bare names (S2-L2A, S1, RGB, HLS, L8, ...)")
    bands.add_argument("--weighting", choices=("released", "inverse_distance"), default="released")
    bands.add_argument("--allow-duplicates", action="store_true")
    bands.set_defaults(func=_bands)

    weights = sub.add_parser("weights", help="list the declared released weights")
    weights.set_defaults(func=_weights)
    config = sub.add_parser(
        "config",
        help="print a config shipped with the package, or copy it with -o",
        description="Print a TerraTorch / LightningCLI config shipped with the package (pip installs have no "
        "configs/ folder): `smarties config demo -o demo.yaml`, then `terratorch fit -c demo.yaml`.",
    )
    config.add_argument("name", nargs="?", help="config name, e.g. demo, pretrain_demo, examples/own_data_segmentation")
    config.add_argument("--list", action="store_true", help="list the shipped configs")
    config.add_argument("-o", "--output", help="write to this file instead of standard output")
    config.add_argument("--overwrite", action="store_true", help="replace an existing --output file")
    config.set_defaults(func=_config)
    for name, (_, _, help_text) in _DELEGATED.items():
        # Listed here for `smarties --help`; main() hands their arguments over before argparse sees them.
        sub.add_parser(name, help=help_text, add_help=False)
    return parser


def _run_delegated(command: str, argv: list[str]) -> int:
    import importlib

    module_name, func_name, _ = _DELEGATED[command]
    func = getattr(importlib.import_module(module_name), func_name)
    try:
        return int(func(argv) or 0)
    except (ValueError, FileNotFoundError, ImportError) as err:
        print(f"smarties {command}: error: {err}", file=sys.stderr)
        return 2


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``smarties`` console script."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in _DELEGATED:
        return _run_delegated(argv[0], argv[1:])
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, FileNotFoundError, FileExistsError, ImportError) as err:
        # Our errors are written to be read by people: show the message, not a traceback.
        print(f"smarties {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
