"""Released weights from the Hugging Face Hub: the commit to download (:func:`resolve_revision`), the download
through ``huggingface_hub`` (:func:`fetch_hub_weights`) and its sha256 check (:func:`verify_hub_file`), every time a
file is used.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from huggingface_hub import constants as hf_constants
from huggingface_hub import hf_hub_download
from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError, OfflineModeIsEnabled

from .checkpoints import CheckpointError, WeightsUnavailableError
from .fetch import file_sha256, lfs_sha256
from .weights import SmartiesWeights, get_weights

__all__ = [
    "HubFile",
    "download_weights",
    "fetch_hub_weights",
    "is_pinned",
    "resolve_revision",
    "verify_hub_file",
]

log = logging.getLogger(__name__)


def _how_to_fetch(w: SmartiesWeights, revision: str | None) -> str:
    rev = f" --revision {revision}" if revision else ""
    return (
        f"On a machine with internet access run `hf download {w.repo_id} {w.filename}{rev} --local-dir DIR`, "
        f"copy DIR/{w.filename} here and pass its path (ckpt_path=... / backbone_ckpt_path: ... / --weights ...)."
    )


def _cached_commit(repo_id: str, filename: str, cache_dir: str | Path | None = None) -> str | None:
    """The newest commit of ``repo_id`` whose ``filename`` is in the Hugging Face cache, if any."""
    from huggingface_hub import scan_cache_dir

    try:
        repos = scan_cache_dir(cache_dir or hf_constants.HF_HUB_CACHE).repos  # the cache hf_hub_download uses
    except Exception:  # noqa: BLE001 (no cache directory yet, unreadable cache: nothing cached)
        return None
    revisions = [
        rev
        for repo in repos
        if repo.repo_id == repo_id and repo.repo_type == "model"
        for rev in repo.revisions
        if any(f.file_name == filename for f in rev.files)
    ]
    return max(revisions, key=lambda r: r.last_modified).commit_hash if revisions else None


def is_pinned(w: SmartiesWeights, revision: str | None = None) -> bool:
    """Whether the commit of ``w`` is fixed by the caller (``revision``) or by this package (``w.revision``)."""
    return revision is not None or w.revision is not None


def resolve_revision(w: SmartiesWeights, revision: str | None = None, cache_dir: str | Path | None = None) -> str:
    """The Hub commit (or ref) to download ``w`` at.

    A ``revision`` given by the caller wins, then the one declared in ``w``. Without either, the repo's current
    commit is resolved through the Hub API (``HF_ENDPOINT`` honoured) and logged as not pinned, so a run downloads
    and records one exact commit, never a moving ``main``. Offline (``HF_HUB_OFFLINE``) or with the Hub
    unreachable, the newest commit already in the Hub cache is used (logged).

    Raises:
        WeightsUnavailableError: no pin, the Hub cannot be asked, and nothing is cached (the message says how to
            get the file).
    """
    if revision is not None:
        return revision
    if w.revision is not None:
        return w.revision
    problem: Exception | None = None
    if not hf_constants.HF_HUB_OFFLINE:
        from huggingface_hub import HfApi

        try:
            sha = HfApi().model_info(w.repo_id).sha
        except Exception as err:  # noqa: BLE001 (network, auth, missing repo: all end in the same advice)
            problem = err
        else:
            if sha:
                log.warning("%s at commit %s (not pinned by this package)", w.repo_id, sha)
                return sha
            problem = ValueError("the Hub answered without a commit")
    cached = _cached_commit(w.repo_id, w.filename, cache_dir)
    if cached is not None:
        log.warning("%s at cached commit %s (offline; not pinned by this package)", w.repo_id, cached)
        return cached
    if problem is None:
        why = "HF_HUB_OFFLINE is set"
    else:
        first_line = str(problem).splitlines()[0] if str(problem) else ""
        why = f"the Hub could not be asked: {type(problem).__name__}: {first_line}"
    raise WeightsUnavailableError(
        f"Could not resolve the current commit of {w.repo_id} on the Hugging Face Hub ({why}) and {w.filename} is "
        f"not in the Hub cache. Pass a revision (a commit sha) or a local file. {_how_to_fetch(w, None)}"
    ) from problem


def download_weights(
    w: SmartiesWeights, revision: str | None = None, cache_dir: str | Path | None = None
) -> tuple[Path, str]:
    """Fetch (or reuse from the Hub cache) ``w`` at ``revision`` (:func:`resolve_revision`), verified:
    ``(path, sha256)``.

    Raises:
        WeightsUnavailableError: the Hub cannot be asked or does not serve the file, and it is not cached.
        CheckpointError: the file's sha256 differs from the expected one (:func:`verify_hub_file`).
    """
    revision = resolve_revision(w, revision, cache_dir)
    try:
        path = Path(hf_hub_download(w.repo_id, w.filename, revision=revision, cache_dir=cache_dir))
    except (LocalEntryNotFoundError, OfflineModeIsEnabled, HfHubHTTPError, OSError) as err:
        offline = " (HF_HUB_OFFLINE is set)" if hf_constants.HF_HUB_OFFLINE else ""
        raise WeightsUnavailableError(
            f"Could not get {w.filename} from the Hugging Face Hub repo {w.repo_id} at revision {revision}{offline} and "
            f"it is not in the Hub cache: {type(err).__name__}: {err}. {_how_to_fetch(w, revision)}"
        ) from err
    return path, verify_hub_file(w, revision, path)


def _hub_sha256(w: SmartiesWeights, revision: str) -> str | None:
    """The sha256 the Hub lists for ``w`` at ``revision`` (an LFS file's ETag), or ``None`` when it cannot be asked
    (offline, unreachable) or the file is not stored in LFS (its ETag is then a git blob id)."""
    if hf_constants.HF_HUB_OFFLINE:
        return None
    from huggingface_hub import get_hf_file_metadata, hf_hub_url

    try:
        etag = get_hf_file_metadata(hf_hub_url(w.repo_id, w.filename, revision=revision)).etag
    except Exception as err:  # noqa: BLE001 (network, auth, proxy: the ETag recorded in the cache is used instead)
        log.warning("Could not ask the Hub for the sha256 of %s/%s: %s", w.repo_id, w.filename, err)
        return None
    return lfs_sha256(etag)


def verify_hub_file(w: SmartiesWeights, revision: str, path: str | Path) -> str:
    """Check a downloaded or cached Hub file against the sha256 it should have; returns its sha256.

    The expected hash is the one declared in ``w``, else the one the Hub lists (the LFS ETag,
    :func:`huggingface_hub.get_hf_file_metadata`), else, offline, the ETag the Hub gave at download time (the
    cache stores each file as ``blobs/<sha256>``). So a download altered on the way and a cached file corrupted or
    replaced later are both refused, every time the file is used.

    Raises:
        CheckpointError: the file's sha256 differs; the message names the cached file to delete.
    """
    path = Path(path)
    blob = path.resolve()  # the snapshot entry links to blobs/<ETag>; without symlinks it is the file itself
    expected, source = w.sha256, "declared by this package"
    if expected is None:
        expected, source = _hub_sha256(w, revision), "listed by the Hub"
    if expected is None and blob != path and lfs_sha256(blob.name):
        expected, source = blob.name, "the Hub's ETag when it was downloaded"
    digest = file_sha256(path)
    if expected is None:
        log.warning("%s/%s at %s: the Hub lists no sha256 for it, not verified (sha256 %s)", w.repo_id, w.filename,
                    revision, digest)  # fmt: skip
    elif digest != expected:
        raise CheckpointError(
            f"{blob} ({w.repo_id}/{w.filename} at {revision}) has sha256 {digest}, expected {expected} ({source}): "
            f"the download was altered or the cached file is corrupt. Delete {blob} and run again to download it "
            f"afresh."
        )
    return digest


@dataclass(frozen=True)
class HubFile:
    """A released weights file fetched from the Hub, as recorded in benchmark results."""

    repo_id: str
    revision: str  # the commit downloaded
    pinned: bool  # fixed by the caller or this package (else: the repo's current commit when it was resolved)
    sha256: str
    path: Path

    def record(self) -> dict[str, Any]:
        """JSON-able provenance: ``{"repo_id", "revision", "pinned", "sha256", "path"}``."""
        return {"repo_id": self.repo_id, "revision": self.revision, "pinned": self.pinned, "sha256": self.sha256,
                "path": str(self.path)}


def fetch_hub_weights(
    source: str | SmartiesWeights, revision: str | None = None, cache_dir: str | Path | None = None
) -> HubFile:
    """Download a declared weights file (tag or :class:`~smarties_terratorch.weights.SmartiesWeights`) at one
    resolved commit.

    The commit is :func:`resolve_revision`'s; the returned :class:`HubFile` carries it, whether it was pinned, and
    the file's sha256 (checked against the declared one when there is one).

    Raises:
        KeyError: an unknown tag.
        WeightsUnavailableError, CheckpointError: as :func:`download_weights`.
    """
    w = get_weights(source) if isinstance(source, str) else source
    commit = resolve_revision(w, revision, cache_dir)
    path, digest = download_weights(w, commit, cache_dir)
    return HubFile(w.repo_id, commit, is_pinned(w, revision), digest, path)

