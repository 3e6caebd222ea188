"""The one place a paper-table row's TerraTorch / LightningCLI config is built.

:func:`build_row_config` reads the row's package config and sets, for one job: the run folder, the backbone and its
weights (:func:`set_backbone`), the protocol variant (:func:`apply_protocol`), the data paths under the data root
(the first existing of each entry's candidates) or, for a smoke job, the generated fixture and the tiny random
backbone (:func:`shrink_for_smoke`).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ..io import write_text
from ..testing import set_path, tiny_model_args
from .table import Job, Row, Table

__all__ = ["HUB", "Prepared", "apply_protocol", "build_row_config", "set_backbone", "shrink_for_smoke"]

#: ``--weights hub``: each backbone's released file, fetched from the Hugging Face Hub.
HUB = "hub"
_TQDM_BAR = "lightning.pytorch.callbacks.TQDMProgressBar"

#: Fetches a weights tag from the Hub: ``{"repo_id", "revision", "pinned", "sha256", "path"}``; raises
#: ``FileNotFoundError`` saying why it cannot (:meth:`smarties_terratorch.bench.run.BenchRun.hub_checkpoint`).
HubFetch = Callable[[str], dict[str, Any]]


@dataclass
class Prepared:
    """A row's resolved config, or why it cannot run."""

    config: dict[str, Any]
    config_file: Path
    missing: list[str] = field(default_factory=list)
    weights: Path | None = None
    hub: dict[str, Any] | None = None  # repo_id, revision, pinned, sha256, path of weights fetched from the Hub
    data_paths: list[str] = field(default_factory=list)  # root-relative paths the row reads (lock look-up)
    notes: list[str] = field(default_factory=list)
    protocol: dict[str, Any] = field(default_factory=dict)


def set_backbone(cfg: dict[str, Any], arch: str, ckpt: str | None, probe_indices: Sequence[int] | None) -> None:
    """Point the config's SMARTIES backbone at ``arch`` / ``ckpt``; UPerNet necks read ``probe_indices``."""
    model_args = cfg["model"]["init_args"]["model_args"]
    model_args["backbone"] = arch
    for key in ("backbone_ckpt_path", "backbone_pretrained", "backbone_revision"):
        model_args.pop(key, None)
    if ckpt is not None:
        model_args["backbone_ckpt_path"] = ckpt
    necks = model_args.get("necks") or []
    for neck in necks:
        # only the 4-level UPerNet pyramids follow the backbone depth (a single-block probe keeps its index)
        if neck.get("name") == "SelectIndices" and probe_indices and len(neck["indices"]) == len(probe_indices):
            neck["indices"] = list(probe_indices)


def shrink_for_smoke(cfg: dict[str, Any], arch: str, depth: int) -> None:
    """Tiny backbone, random weights, a few batches, no checkpoints or loggers."""
    init = cfg["model"]["init_args"]
    init["model_args"] = tiny_model_args(init["model_args"], arch, depth)
    data = cfg["data"]["init_args"]
    data["batch_size"] = 2
    data["num_workers"] = 0
    # fast_dev_run: one batch per loop, no checkpoints or loggers (an integer limit_train_batches: 1 ran every batch
    # here: the CLI read it as the fraction 1.0).
    cfg["trainer"].update(accelerator="cpu", fast_dev_run=1, enable_progress_bar=False, logger=False)
    for key in ("check_val_every_n_epoch", "max_epochs", "enable_checkpointing", "num_sanity_val_steps"):
        cfg["trainer"].pop(key, None)
    callbacks = cfg["trainer"].get("callbacks") or []
    cfg["trainer"]["callbacks"] = [c for c in callbacks if not c.get("class_path", "").endswith("ModelCheckpoint")]


def apply_protocol(
    cfg: dict[str, Any], row: Row, table: Table, protocol: str, cuda: bool | None = None
) -> dict[str, Any]:
    """Set the protocol variant's settings on a row's config; return what was set (recorded in the result).

    Only rows marked ``authors_protocol`` (the authors' own evaluation code) follow the variant: layer decay for
    fine-tuning rows, drop path, and fp16 autocast when the run is on a CUDA device (fp32 otherwise). The PANGAEA
    rows keep their configs (PANGAEA's protocol: fp32).

    Args:
        cfg: the row's config, changed in place.
        row: the row.
        table: the table (its ``protocols``).
        protocol: the variant's name.
        cuda: whether a CUDA device is available (default: ask torch).

    Raises:
        ValueError: an unknown protocol variant.
    """
    if protocol not in table.protocols:
        known = ", ".join(table.protocols) or "none in the table"
        raise ValueError(f"Unknown --protocol {protocol!r}; known: {known}")
    settings = table.protocols[protocol]
    applied: dict[str, Any] = {"variant": protocol}
    if not row.authors_protocol:
        applied["note"] = "not an authors' row: the config's own settings"
        return applied
    init = cfg["model"]["init_args"]
    if row.protocol == "finetune":
        init["layer_decay"] = float(settings.layer_decay)
        applied["layer_decay"] = init["layer_decay"]
    if settings.drop_path_rate is not None:
        init["model_args"]["backbone_drop_path_rate"] = float(settings.drop_path_rate)
        applied["drop_path_rate"] = float(settings.drop_path_rate)
    trainer = cfg.setdefault("trainer", {})
    accelerator = str(trainer.get("accelerator", "auto"))
    if cuda is None:
        cuda = _cuda_available()
    on_cuda = accelerator in ("auto", "gpu", "cuda") and cuda
    trainer["precision"] = settings.gpu_precision if on_cuda else "32-true"
    applied["precision"] = trainer["precision"]
    return applied


def _cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


def build_row_config(
    job: Job,
    table: Table,
    out: Path,
    data_root: Path | None = None,
    weights: Path | str | None = None,
    fixtures: Callable[[str], Path] | None = None,
    protocol: str = "released",
    hub: HubFetch | None = None,
) -> Prepared:
    """The config dict a job runs, with data/weights paths set; ``missing`` lists what is absent and where.

    Args:
        job: the row and backbone.
        table: the loaded table (backbone definitions).
        out: the run folder of this kind (``OUT/<kind>``).
        data_root: the datasets' root (real runs).
        weights: a folder with the official ``.safetensors`` files, one file, or ``"hub"`` (each backbone's released
            file from the Hugging Face Hub, fetched with ``hub``) (real / real-data runs).
        fixtures: dataset name -> generated fixture root (smoke runs).
        protocol: the protocol variant of the table's ``protocols`` (:func:`apply_protocol`).
        hub: fetches a weights tag from the Hub (``weights="hub"``).

    Raises:
        FileNotFoundError: the row's config file does not exist.
        ValueError: a smoke job without ``fixtures``, ``weights="hub"`` without ``hub``, an unknown protocol.
    """
    row = job.row
    config_path = table.config_file(row)
    cfg = copy.deepcopy(yaml.safe_load(config_path.read_text(encoding="utf-8")))
    prepared = Prepared(cfg, config_path)
    trainer = cfg.setdefault("trainer", {})
    run_dir = out / "runs" / job.key
    trainer["default_root_dir"] = str(run_dir)
    trainer.pop("strategy", None)
    trainer.pop("num_nodes", None)
    if isinstance(trainer.get("logger"), dict):  # keep the config's CSV logger, inside the run folder
        trainer["logger"].setdefault("init_args", {})["save_dir"] = str(run_dir)

    if job.kind == "smoke":
        if fixtures is None or row.smoke is None:
            raise ValueError(f"smoke job {job.key} needs fixtures and the row's smoke entry")
        shrink_for_smoke(cfg, table.smoke_backbone.arch, table.smoke_backbone.depth)
        root = fixtures(row.smoke.fixture)
        for dotted, value in row.smoke.overrides.items():
            set_path(cfg, dotted, value.replace("{root}", str(root)) if isinstance(value, str) else value)
        prepared.protocol = apply_protocol(cfg, row, table, protocol)
        return prepared

    if trainer.get("enable_progress_bar", True):  # per-row progress: Lightning's tqdm bar (under the overall one)
        trainer["callbacks"] = [*(trainer.get("callbacks") or []), {"class_path": _TQDM_BAR}]
    _set_weights(prepared, job, table, weights, hub)
    for dotted, value in (row.backbone_overrides.get(job.backbone) or {}).items():
        set_path(cfg, dotted, value)  # e.g. the ViT-L script's own evaluation period
    prepared.protocol = apply_protocol(cfg, row, table, protocol)
    if job.kind == "real-data":
        for dotted, value in row.overrides.items():
            set_path(cfg, dotted, value)
        if row.source == "bigearthnet_examples":
            _use_bigearthnet_examples(cfg, out / "data")
        return prepared
    _set_data(prepared, row, data_root if data_root is not None else Path("data"))
    return prepared


def _set_weights(
    prepared: Prepared, job: Job, table: Table, weights: Path | str | None, hub: HubFetch | None
) -> None:
    """The backbone and its weights file (local or from the Hub); a missing file is recorded, never guessed."""
    bb = table.backbones[job.backbone]
    if weights == HUB:
        if hub is None:
            raise ValueError("--weights hub needs a Hub fetcher (BenchRun.hub_checkpoint)")
        ckpt, msg = None, ""
        try:
            fetched = hub(bb.hub_tag)
        except FileNotFoundError as err:
            msg = f"weights {bb.weights} from the Hugging Face Hub: {err}"
        else:
            ckpt, prepared.hub = Path(fetched["path"]), fetched
    else:
        ckpt = _find_weights(None if weights is None else Path(weights), bb.weights)
        msg = f"weights {bb.weights} " + (f"not found in {weights}" if weights else "not given (no --weights)")
    if ckpt is None:
        if job.kind == "real":
            prepared.missing.append(msg)
        else:  # real-data rows run anyway, honestly labelled
            prepared.notes.append(f"{msg}: random-initialised {bb.arch} (wiring check, features carry no meaning)")
    prepared.weights = ckpt
    set_backbone(prepared.config, bb.arch, str(ckpt) if ckpt else None, bb.probe_indices)


def _set_data(prepared: Prepared, row: Row, root: Path) -> None:
    """Point the config at the row's data under ``root``: the first existing candidate of each entry."""
    cfg = prepared.config
    for dotted, rel in row.data_created.items():  # files the data module writes (statistics caches)
        set_path(cfg, dotted, str((root / rel).resolve()))
    for dotted, rel in row.data.items():
        if rel is None:
            set_path(cfg, dotted, None)
            continue
        path, tried = _first_existing(root, rel)
        if path is None:
            prepared.missing.append(f"{dotted.rsplit('.', 1)[-1]}: {' or '.join(map(str, tried))}")
            path = tried[0]
        elif path.is_relative_to(root.resolve()):
            prepared.data_paths.append(path.relative_to(root.resolve()).as_posix())
        set_path(cfg, dotted, str(path))


def _first_existing(root: Path, rel: str | Sequence[str]) -> tuple[Path | None, list[Path]]:
    """The first of ``rel``'s candidates (one path, or a list: the authors' file name first, then older names)
    that exists under ``root``, and every path tried."""
    tried = [(root / r).resolve() for r in ([rel] if isinstance(rel, str) else rel)]
    return next((p for p in tried if p.exists()), None), tried


def _use_bigearthnet_examples(cfg: dict[str, Any], folder: Path) -> None:
    """Point a BigEarthNet config at the six real patches of ``bigearthnet-common``, all in every split (the
    leave-one-out kNN evaluates each patch against the other five)."""
    from ..sample_data import bigearthnet_examples

    try:
        examples = bigearthnet_examples(folder / "bigearthnet-examples")
    except ImportError as err:
        raise FileNotFoundError(f"the real BigEarthNet patches: {err}") from err
    split = write_text(folder / "bigearthnet-examples.txt", "".join(f"{e.s2_dir.name}\n" for e in examples))
    set_path(cfg, "data.init_args.s2_root", str(examples[0].s2_dir.parent))
    for key in ("train_split", "val_split", "test_split"):
        set_path(cfg, f"data.init_args.{key}", str(split))


def _find_weights(weights: Path | None, filename: str) -> Path | None:
    if weights is None:
        return None
    if weights.is_file():
        return weights
    candidate = weights / filename
    return candidate if candidate.is_file() else None
