"""``smarties embed`` and ``smarties predict``: argument parsing and the per-scene loop.

One scene: ``smarties embed SCENE.tif --bands ... --out OUT.tif`` (or one file per band, in ``--bands`` order).
A catalogue: ``--scenes PATH|PATTERN|@LIST ... --out-dir DIR`` with outputs named after each scene, ``--shard i/n``
for job arrays; finished outputs are skipped on a re-run, a failing scene does not stop the others.

Exit codes: 0 success; 1 one or more scenes of a catalogue failed (named in the summary); 2 a bad argument or
input, with a one-line message; 130 / 143 interrupted (Ctrl-C / SIGTERM), with no partial output left behind.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ..device import PRECISIONS, resolve_device, resolve_precision
from ..io import RasterReader, check_output, resampling_kernel
from .catalogue import Scene, expand_scenes, output_path, parse_shard, scene_name, take_shard

__all__ = ["embed_main", "handle_termination", "predict_main"]


class _Usage(ValueError):
    """A bad combination of arguments (exit code 2)."""


@contextlib.contextmanager
def handle_termination(prog: str) -> Iterator[None]:
    """Turn SIGTERM into ``SystemExit(143)`` while the block runs, so atomic writers discard their temporary files.

    (Python's default for SIGTERM is to die on the spot, skipping every ``finally``.) Only the main thread can
    install signal handlers; elsewhere this is a no-op.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def terminate(signum: int, frame: Any) -> None:
        print(f"{prog}: terminated (signal {signum}); partial outputs are discarded", file=sys.stderr, flush=True)
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, terminate)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _split(text: str | None) -> list[str]:
    return [b.strip() for b in (text or "").split(",") if b.strip()]


# ---------------------------------------------------------------------------------------------------- parsing
def _common_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("scene", nargs="*", help="one scene: a multi-band raster, or one single-band file per band "
                   "(in --bands order)")  # fmt: skip
    p.add_argument("--out", help="output GeoTIFF of the single scene")
    p.add_argument("--scenes", nargs="+", metavar="SPEC", help="catalogue mode: raster paths, quoted glob patterns "
                   "or @LIST files (one scene per line; per-band files of one scene comma-separated)")  # fmt: skip
    p.add_argument("--out-dir", help="catalogue mode: folder of the outputs, named after each scene")
    p.add_argument("--shard", help="catalogue mode: process every n-th scene from the i-th (0-based), e.g. "
                   "$SLURM_ARRAY_TASK_ID/$SLURM_ARRAY_TASK_COUNT")  # fmt: skip
    p.add_argument("--overwrite", action="store_true", help="replace existing outputs (only once the new ones "
                   "are complete)")  # fmt: skip
    p.add_argument("--skip-existing", action="store_true", help="skip a scene whose outputs all exist instead of "
                   "failing (always on in catalogue mode)")  # fmt: skip
    p.add_argument("--allow-empty", action="store_true", help="keep outputs with no valid token/pixel (default: "
                   "an error, nothing written)")  # fmt: skip
    p.add_argument("--tile-size", type=int, default=224, help="tile side in pixels, multiple of 16 (default 224)")
    p.add_argument("--overlap", type=int, default=32, help="overlap of neighbouring tiles, multiple of 16 (default 32)")
    p.add_argument("--batch-size", type=int, default=8, help="tiles per forward pass (default 8)")
    p.add_argument("--device", default="auto", help="auto (CUDA, then MPS, then CPU), cpu, cuda, cuda:<i> or mps")
    p.add_argument("--precision", default="auto", choices=PRECISIONS, help="auto = bf16/fp16 only where the "
                   "hardware has it natively, else fp32 (default auto)")  # fmt: skip
    p.add_argument("--compile", action="store_true", help="torch.compile the model (slow first batch)")
    p.add_argument("--threads", type=int, help="torch intra-op threads (default: torch's choice)")
    p.add_argument("--resampling", default="bilinear", help="kernel for band files of other resolutions or CRS "
                   "(nearest, bilinear, cubic, average, ...; default bilinear)")  # fmt: skip
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def _embed_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="smarties embed", description=embed_main.__doc__)
    _common_args(p)
    p.add_argument("--bands", required=True, help="comma-separated band names, one per input channel")
    p.add_argument("--sensor", help="sensor preset for bare band names (e.g. S2-L1C)")
    p.add_argument("--arch", default="smarties_vit_base_patch16", help="model factory (default ViT-B/16)")
    p.add_argument("--weights", help="checkpoint (local .safetensors/.pth) or declared weights tag")
    p.add_argument("--stats", default="none", help="normalisation: a statistics table name (e.g. S2-L1C), a "
                   "JSON/YAML file with mean/std/p1/p99 lists, or 'none' (input already normalised; default)")  # fmt: skip
    p.add_argument("--min-valid", type=float, default=0.5, help="min valid pixel fraction per token, in (0, 1] "
                   "(default 0.5)")  # fmt: skip
    p.add_argument("--preview", help="also write a PCA-to-RGB preview: 'png', 'tif' or 'png,tif' (named after the "
                   "output), or explicit .png/.tif paths (single scene only)")  # fmt: skip
    return p


def _predict_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="smarties predict", description=predict_main.__doc__)
    _common_args(p)
    p.add_argument("--checkpoint", required=True, help="Lightning checkpoint written by terratorch fit")
    p.add_argument("--trust-checkpoint", action="store_true", help="allow a checkpoint that needs arbitrary "
                   "unpickling (runs code from the file: only for files you made)")  # fmt: skip
    p.add_argument("--bands", help="names of the scene's channels, in order (default: the checkpoint's "
                   "model_args.backbone_bands); any spelling of the same bands (BLUE = B02 = S2:B02)")  # fmt: skip
    p.add_argument("--stats", help="normalisation (default: the checkpoint's model_args.backbone_stats): a "
                   "statistics table name (e.g. S2-L2A), a JSON/YAML file with mean/std/p1/p99 lists, or 'none' "
                   "(the scene is already normalised)")  # fmt: skip
    p.add_argument("--probabilities", nargs="?", const="", metavar="PATH", help="also write blended class "
                   "probabilities: to PATH, or without a value next to each output (<name>_probabilities.tif)")  # fmt: skip
    return p


# ---------------------------------------------------------------------------------------------------- jobs
@dataclass
class _Job:
    scene: Scene
    out: Path
    extra: dict[str, Path] = field(default_factory=dict)  # other outputs: probabilities, previews

    @property
    def outputs(self) -> list[Path]:
        return [self.out, *self.extra.values()]


def _check_settings(args: argparse.Namespace, scale: int) -> None:
    """Every cheap argument check, before anything is read or written."""
    if args.tile_size <= 0 or args.tile_size % scale:
        raise _Usage(f"--tile-size {args.tile_size}: must be a positive multiple of {scale}")
    if args.overlap < 0 or args.overlap % scale or args.overlap >= args.tile_size:
        raise _Usage(f"--overlap {args.overlap}: must be a multiple of {scale} in [0, --tile-size)")
    if args.batch_size < 1:
        raise _Usage(f"--batch-size {args.batch_size}: must be at least 1")
    if args.threads is not None and args.threads < 1:
        raise _Usage(f"--threads {args.threads}: must be at least 1")
    if hasattr(args, "min_valid") and not 0 < args.min_valid <= 1:
        raise _Usage(f"--min-valid {args.min_valid}: must be in (0, 1] (a fraction of a token's pixels)")
    resampling_kernel(args.resampling)
    catalogue = args.scenes is not None
    if catalogue and args.scene:
        raise _Usage("give the scene as positional paths or as --scenes, not both")
    if not catalogue and not args.scene:
        raise _Usage("no scene: give a raster (or its per-band files), or --scenes for a catalogue")
    if catalogue and (args.out or not args.out_dir):
        raise _Usage("--scenes writes one output per scene: give --out-dir DIR (not --out)")
    if not catalogue and (args.out_dir or args.shard):
        raise _Usage("--out-dir and --shard are for catalogues (--scenes); a single scene takes --out")
    if not catalogue and not args.out:
        raise _Usage("give --out for the output GeoTIFF")


def _previews(spec: str | None, out: Path, catalogue: bool) -> dict[str, Path]:
    previews: dict[str, Path] = {}
    for item in _split(spec):
        kind = item.lower().rsplit(".", 1)[-1]
        kind = "tif" if kind == "tiff" else kind
        if kind not in ("png", "tif"):
            raise _Usage(f"--preview {item!r}: give png, tif or a .png/.tif path")
        if "." in item and catalogue:
            raise _Usage(f"--preview {item!r}: with --scenes give 'png' or 'tif' (one preview per scene)")
        previews[f"preview_{kind}"] = Path(item) if "." in item else out.with_name(f"{out.stem}_preview.{kind}")
    return previews


def _jobs(args: argparse.Namespace, n_bands: int | None, suffix: str) -> list[_Job]:
    if args.scenes is None:
        paths = tuple(Path(p) for p in args.scene)
        if len(paths) > 1 and n_bands is not None and len(paths) != n_bands:
            raise _Usage(
                f"{len(paths)} band files for {n_bands} bands: give one file per band in --bands order, or use "
                f"--scenes for several scenes"
            )
        scenes = [Scene(scene_name(paths), paths)]
    else:
        scenes = take_shard(expand_scenes(args.scenes), parse_shard(args.shard))
    jobs = []
    for scene in scenes:
        out = Path(args.out) if args.scenes is None else output_path(args.out_dir, scene, suffix)
        job = _Job(scene, out, _previews(getattr(args, "preview", None), out, args.scenes is not None))
        probs = getattr(args, "probabilities", None)
        if probs is not None:
            if probs and args.scenes is not None:
                raise _Usage("--probabilities with --scenes takes no path (one file per scene, named after it)")
            job.extra["probabilities"] = Path(probs) if probs else out.with_name(f"{out.stem}_probabilities.tif")
        jobs.append(job)
    return jobs


def _plan(jobs: list[_Job], args: argparse.Namespace, inputs: list[Path], report: "_Report") -> list[_Job]:
    """Check every output before anything runs: refused outputs fail (single scene: the whole run), finished
    scenes are skipped when allowed."""
    skip = args.skip_existing or args.scenes is not None
    todo = []
    for job in jobs:
        try:
            if skip and not args.overwrite and all(p.is_file() for p in job.outputs):
                report.skipped(job)
                continue
            seen = [*inputs, *job.scene.paths]
            for path in job.outputs:
                check_output(path, seen, overwrite=args.overwrite)
                seen.append(path)
            todo.append(job)
        except (ValueError, OSError) as err:
            if args.scenes is None:
                raise
            report.failed(job, err)
    return todo


class _Report:
    """One JSON line per scene on stdout, human notes on stderr, a summary and the exit code at the end."""

    def __init__(self, prog: str, catalogue: bool) -> None:
        self.prog, self.catalogue = prog, catalogue
        self.done: list[str] = []
        self.skips: list[str] = []
        self.failures: list[str] = []

    def skipped(self, job: _Job) -> None:
        self.skips.append(job.scene.name)
        print(f"{self.prog}: {job.scene.name}: skipped, exists ({job.out})", file=sys.stderr)
        print(json.dumps({"scene": job.scene.name, "status": "skipped, exists", "out": str(job.out)}), flush=True)

    def finished(self, job: _Job, summary: dict[str, Any]) -> None:
        self.done.append(job.scene.name)
        print(json.dumps({"scene": job.scene.name, "status": "done", **summary}), flush=True)

    def failed(self, job: _Job, err: BaseException) -> None:
        self.failures.append(job.scene.name)
        print(f"{self.prog}: {job.scene.name}: failed: {err}", file=sys.stderr, flush=True)

    def exit_code(self) -> int:
        if self.catalogue:
            print(f"{self.prog}: {len(self.done)} done, {len(self.skips)} skipped (exist), {len(self.failures)} "
                  f"failed{': ' + ', '.join(self.failures) if self.failures else ''}", file=sys.stderr)  # fmt: skip
        return 1 if self.failures else 0


def _run_jobs(
    jobs: list[_Job], args: argparse.Namespace, report: _Report, run: Callable[[_Job, RasterReader], dict[str, Any]]
) -> int:
    for job in jobs:
        try:
            with RasterReader(job.scene.paths, resampling=args.resampling) as reader:
                report.finished(job, run(job, reader))
        except (ValueError, OSError, RuntimeError) as err:
            if args.scenes is None:
                raise
            report.failed(job, err)
    return report.exit_code()


def _check_count(reader: RasterReader, bands: list[str], scene: Scene) -> None:
    if reader.count != len(bands):
        raise ValueError(
            f"{scene.paths[0]} has {reader.count} band(s) but --bands names {len(bands)}; name every band of the "
            f"file in order (or pass one file per band)."
        )


def _normalizer(stats: str | None, bands: Any) -> Any:
    from ..normalization import SmartiesNormalize

    if stats is None or str(stats).lower() == "none":
        return None
    # as a normalising model does: --stats on scenes that are already normalised is a mistake
    return SmartiesNormalize.from_spec(stats, bands=bands, check_units=True, refuse_normalized=True)


def _stats_inputs(stats: str | None) -> list[Path]:
    return [Path(stats)] if stats is not None and Path(stats).is_file() else []


def _resolve(bands: list[str], sensor: str | None = None, what: str = "--bands") -> Any:
    """``bands`` through the one band vocabulary (:func:`~smarties_terratorch.spectrum.resolve_bands`)."""
    from ..spectrum import resolve_bands

    try:
        return resolve_bands(bands, sensor=sensor)
    except (ValueError, TypeError) as err:
        raise _Usage(f"{what}: {err}") from None


@contextlib.contextmanager
def _threads(n: int | None) -> Iterator[None]:
    before = torch.get_num_threads()
    if n:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _main(prog: str, parser: argparse.ArgumentParser, argv: list[str], body: Callable[[argparse.Namespace], int]) -> int:
    with handle_termination(prog):
        args = parser.parse_args(argv)  # argparse's own usage errors exit with code 2
        try:
            with _threads(args.threads):
                return body(args)
        except KeyboardInterrupt:
            print(f"{prog}: interrupted; partial outputs are discarded", file=sys.stderr)
            return 130
        except (ValueError, OSError, ImportError) as err:
            # Errors here are written for people: one line, no traceback.
            print(f"{prog}: error: {err}", file=sys.stderr)
            return 2


# ---------------------------------------------------------------------------------------------------- embed
def _embed(args: argparse.Namespace) -> int:
    from ..models import vit
    from .embed import embed_scene
    from .preview import pca_preview

    _check_settings(args, 16)
    if args.arch not in vit.VARIANTS:
        raise _Usage(f"Unknown --arch {args.arch!r}; choose one of {', '.join(vit.VARIANTS)}")
    device = resolve_device(args.device)
    precision = resolve_precision(args.precision, device)
    bands = _split(args.bands)
    if not bands:
        raise _Usage("--bands names no band")
    normalize = _normalizer(args.stats, _resolve(bands, args.sensor))
    local = args.weights is not None and Path(args.weights).is_file()
    report = _Report("smarties embed", args.scenes is not None)
    inputs = [*_stats_inputs(args.stats), *([Path(args.weights)] if local else [])]
    todo = _plan(_jobs(args, len(bands), "_embed.tif"), args, inputs, report)
    if not todo:
        return report.exit_code()
    model = getattr(vit, args.arch)(
        bands=bands, sensor=args.sensor, ckpt_path=args.weights if local else None, pretrained=args.weights or False
    )
    if args.weights is None:
        print("smarties embed: WARNING: no --weights given, the model is randomly initialised", file=sys.stderr)

    def run(job: _Job, reader: RasterReader) -> dict[str, Any]:
        _check_count(reader, bands, job.scene)
        summary = embed_scene(
            reader, model, job.out, normalize=normalize, tile_size=args.tile_size, overlap=args.overlap,
            batch_size=args.batch_size, precision=precision, device=device, min_valid=args.min_valid,
            compile=args.compile, progress=not args.quiet, overwrite=args.overwrite, allow_empty=args.allow_empty,
        )  # fmt: skip
        summary["threads"] = torch.get_num_threads()
        if summary["valid_tokens"] == 0:
            print(f"smarties embed: WARNING: {job.out} has no valid token (--allow-empty)", file=sys.stderr)
        png, tif = job.extra.get("preview_png"), job.extra.get("preview_tif")
        if png is not None or tif is not None:
            summary["preview"] = pca_preview(job.out, png=png, tif=tif, overwrite=args.overwrite)
        return summary

    return _run_jobs(todo, args, report, run)


def embed_main(argv: list[str]) -> int:
    """``smarties embed``: tiled patch-token features of scenes as georeferenced GeoTIFFs."""
    return _main("smarties embed", _embed_parser(), argv, _embed)


# ---------------------------------------------------------------------------------------------------- predict
def _smarties_encoder(task: Any) -> Any:
    """The SMARTIES model inside a TerraTorch task (its backbone), if any."""
    from ..models.vit import SmartiesViT

    return next((m for m in task.modules() if isinstance(m, SmartiesViT)), None) if hasattr(task, "modules") else None


def _predict_normalizer(args: argparse.Namespace, task: Any, bands: Any, checkpoint: Path) -> Any:
    """What normalises the scene: the model itself (the checkpoint's ``backbone_stats``, or ``--stats`` in its
    place), a normaliser built from ``--stats``, or nothing (``--stats none``). A checkpoint that records no
    statistics needs ``--stats``."""
    encoder = _smarties_encoder(task)
    in_model = encoder is not None and encoder.input_norm is not None
    if args.stats is None:
        if in_model:
            print(f"smarties predict: the model normalises its input with {encoder.input_norm.source} (the "
                  f"checkpoint's backbone_stats)", file=sys.stderr)  # fmt: skip
            return None
        raise _Usage(
            f"{checkpoint} records no normalisation statistics (model_args.backbone_stats): pass --stats with the "
            f"statistics the model was trained with (a table such as S2-L2A, or the file smarties stats wrote), "
            f"or --stats none if the scene is already normalised"
        )
    if in_model:  # --stats replaces the checkpoint's statistics inside the model ('none': input already normalised)
        encoder.set_stats(None if str(args.stats).lower() == "none" else args.stats)
        return None
    return _normalizer(args.stats, bands)


def _early_band_check(bands: list[str], stats: str | None) -> None:
    """Unknown ``--bands`` names and statistics rows fail before the (slow) checkpoint load. Bare colour names
    (``R``, ``NIR``) need the checkpoint's ``backbone_sensor`` and are checked once it is read."""
    from ..spectrum import resolve_bands

    try:
        resolved = resolve_bands(bands)
    except (ValueError, TypeError) as err:
        if "ambiguous" in str(err):
            return
        raise _Usage(f"--bands: {err}") from None
    _normalizer(stats, resolved)


def _scene_bands(task: Any, override: list[str] | None, checkpoint: Path) -> Any:
    """The scene's bands, resolved as the model resolves them (its sensor); ``--bands`` must be the model's bands."""
    from .predict import task_bands

    encoder = _smarties_encoder(task)
    sensor = getattr(encoder, "default_sensor", None)
    trained = getattr(encoder, "default_bands", None)
    if trained is None and task_bands(task):
        trained = _resolve(task_bands(task), sensor, what="the checkpoint's backbone_bands")
    if not override:
        return trained
    given = _resolve(override, sensor)
    if trained is not None and given.spectra != trained.spectra:
        raise _Usage(
            f"--bands {','.join(override)} are not the bands {checkpoint} was trained on "
            f"({', '.join(trained.names)}), in that order: the scene's channels must be those bands (another "
            f"spelling of them is fine)"
        )
    return given


def _predict(args: argparse.Namespace) -> int:
    from ..checkpoints import refuse_url
    from .predict import load_segmentation_task, predict_scene, task_bands

    refuse_url(args.checkpoint)  # before Path() folds "http://" into a local-looking name
    _check_settings(args, 1)
    device = resolve_device(args.device)
    precision = resolve_precision(args.precision, device)
    checkpoint = Path(args.checkpoint)
    if not checkpoint.is_file():
        raise FileNotFoundError(f"Checkpoint {checkpoint} not found")
    override = _split(args.bands) or None
    if override:
        _early_band_check(override, args.stats)
    report = _Report("smarties predict", args.scenes is not None)
    inputs = [checkpoint, *_stats_inputs(args.stats)]
    todo = _plan(_jobs(args, len(override) if override else None, "_classes.tif"), args, inputs, report)
    if not todo:
        return report.exit_code()
    task = load_segmentation_task(checkpoint, trust=args.trust_checkpoint)
    bands = override or task_bands(task)
    if bands is None:
        raise _Usage(f"{checkpoint} stores no model_args.backbone_bands; pass --bands")
    if args.scenes is None and len(args.scene) > 1 and len(args.scene) != len(bands):
        raise _Usage(f"{len(args.scene)} band files for {len(bands)} bands ({', '.join(bands)}): give one file per band")
    normalize = _predict_normalizer(args, task, _scene_bands(task, override, checkpoint), checkpoint)

    def run(job: _Job, reader: RasterReader) -> dict[str, Any]:
        _check_count(reader, bands, job.scene)
        summary = predict_scene(
            reader, task, job.out, normalize=normalize, tile_size=args.tile_size, overlap=args.overlap,
            batch_size=args.batch_size, precision=precision, device=device,
            probabilities=job.extra.get("probabilities"), compile=args.compile, progress=not args.quiet,
            overwrite=args.overwrite, allow_empty=args.allow_empty,
        )  # fmt: skip
        summary["threads"] = torch.get_num_threads()
        return summary

    return _run_jobs(todo, args, report, run)


def predict_main(argv: list[str]) -> int:
    """``smarties predict``: tiled class maps of scenes from a TerraTorch segmentation checkpoint."""
    return _main("smarties predict", _predict_parser(), argv, _predict)
