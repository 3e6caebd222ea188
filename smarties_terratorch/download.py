"""``smarties data download``: the evaluation datasets and the SMARTIES authors' split files, laid out for the configs.

Sources, archive layouts and the split files' published sha256 are declared in ``data/sources.yaml`` (shipped with
the package). The sha256 of every fetched file is recorded in ``<root>/smarties-data.lock.json``; later runs check
the files still on disk against it, and a later download of the same file must match it. Plain files are fetched
with huggingface_hub's HTTP downloader (progress bar, HTTP ``Range`` resume from ``<file>.part``); Hugging Face
dataset files with ``hf_hub_download`` (honours ``HF_ENDPOINT``), unless a mirror is given, which then serves every
file as ``<mirror>/<original host>/<original path>``. Archives are unpacked into a hidden folder beside their
destination (members that would land outside it are refused) and renamed into place, so a folder the configs read
is either complete or absent.

Usage::

    smarties data download --root data                      # every dataset and every split file
    smarties data download eurosat splits --root data       # EuroSAT_MS (with its split files) + all split files
    smarties data download --root data --mirror https://mirror.example.org/smarties
    smarties data download eurosat --root data --mirror URL --sources my_sources.yaml   # another sources table
"""

from __future__ import annotations

import argparse
import hashlib
import importlib
import json
import os
import re
import shutil
import sys
import tarfile
import zipfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml
from tqdm.auto import tqdm

from .io import write_text
from .io.writer import temp_dir

__all__ = [
    "LOCK_NAME",
    "MIRROR_ENV",
    "SOURCES_FILE",
    "DownloadError",
    "Lock",
    "Status",
    "download",
    "extract",
    "load_sources",
    "main",
    "mirror_url",
    "resolve_names",
]

#: The declared sources (URLs, layouts, split-file checksums).
SOURCES_FILE = Path(__file__).parent / "data" / "sources.yaml"
#: The lock file, under the data root.
LOCK_NAME = "smarties-data.lock.json"
#: Environment variable with a mirror URL (same meaning as ``--mirror``).
MIRROR_ENV = "SMARTIES_DATA_MIRROR"
#: The name that selects the split files alone.
SPLITS = "splits"
#: Folder (under the root) for archives while they are fetched, and after with ``--keep-archives``.
DOWNLOADS = "downloads"

_HUB_URL = re.compile(
    r"https?://(?:hf\.co|huggingface\.co)/datasets/(?P<repo>[^/]+/[^/]+)/resolve/(?P<revision>[^/]+)/(?P<file>[^?]+)"
)
_SHA256 = re.compile(r"[0-9a-f]{64}")


class DownloadError(RuntimeError):
    """A download, check or extraction failed; the message names the file or URL and the fix."""


@dataclass(frozen=True)
class Remote:
    """One file to fetch: its name, its original address and what is known about it."""

    name: str
    url: str  # the original address (recorded in the lock; a mirror path is derived from it)
    hub: tuple[str, str, str] | None = None  # (repo, file, revision) of a Hugging Face dataset file
    sha256: str | None = None  # published checksum
    md5: str | None = None  # checksum declared by torchgeo


@dataclass
class Status:
    """What one run did for one dataset (or for the split files)."""

    name: str
    title: str
    state: str = "up to date"  # "up to date" | "downloaded" | "missing" | "error"
    messages: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.state in ("up to date", "downloaded")


# ------------------------------------------------------------------------------------------------ sources and names


def load_sources(path: str | Path = SOURCES_FILE) -> dict[str, Any]:
    """The declared sources (``data/sources.yaml`` by default)."""
    return yaml.safe_load(Path(path).read_text(encoding="utf-8"))


def _key(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


def resolve_names(names: Sequence[str], sources: Mapping[str, Any]) -> list[str]:
    """Canonical dataset names for user-given ones (case, ``-``, ``_`` and aliases ignored); none = all + splits.

    Raises:
        DownloadError: an unknown name (the known ones are listed).
    """
    datasets = sources["datasets"]
    if not names:
        return [*datasets, SPLITS]
    table = {_key(SPLITS): SPLITS}
    for name, entry in datasets.items():
        for alias in (name, entry.get("title", name), *entry.get("aliases", [])):
            table[_key(alias)] = name
    out: list[str] = []
    for name in names:
        canonical = table.get(_key(name))
        if canonical is None:
            raise DownloadError(f"Unknown dataset {name!r}; known: {', '.join([*datasets, SPLITS])}.")
        if canonical not in out:
            out.append(canonical)
    return out


def mirror_url(url: str, mirror: str) -> str:
    """``url`` on a mirror: ``<mirror>/<original host>/<original path>`` (the query is dropped)."""
    parts = urlsplit(url)
    return f"{mirror.rstrip('/')}/{parts.netloc}{parts.path}"


def _hub_url(repo: str, file: str, revision: str) -> str:
    return f"https://huggingface.co/datasets/{repo}/resolve/{revision}/{file}"


def torchgeo_source(class_name: str) -> tuple[str, str | None]:
    """(url, md5) that the installed torchgeo's dataset class ``class_name`` downloads."""
    cls = getattr(importlib.import_module("torchgeo.datasets"), class_name)
    return cls.url, getattr(cls, "md5", None)


def _remote(spec: Mapping[str, Any], locked: Mapping[str, Any] | None, mirror: str | None) -> Remote:
    """The file a ``files`` entry of the sources describes."""
    md5 = spec.get("md5")
    if "hub" in spec:
        hub = spec["hub"]
        # Without a mirror, re-fetch the commit the lock recorded (a mirror only knows the declared revision).
        revision = (locked or {}).get("commit") if not mirror else None
        revision = revision or hub.get("revision", "main")
        url = _hub_url(hub["repo"], hub["file"], revision)
    elif "torchgeo" in spec:
        url, md5 = torchgeo_source(spec["torchgeo"])
    else:
        url = spec["url"]
    match = _HUB_URL.match(url)
    hub_ref = (match["repo"], match["file"], match["revision"]) if match else None
    name = Path(urlsplit(url).path).name
    return Remote(name=name, url=url, hub=hub_ref, sha256=spec.get("sha256"), md5=md5)


# ------------------------------------------------------------------------------------------------ lock file


class Lock:
    """``<root>/smarties-data.lock.json``: root-relative path -> url, sha256, size, dataset, completion.

    Saved atomically after every change, so an interrupted run keeps what it recorded.
    """

    def __init__(self, root: Path) -> None:
        self.path = root / LOCK_NAME
        self.files: dict[str, dict[str, Any]] = {}
        if self.path.exists():
            try:
                self.files = json.loads(self.path.read_text(encoding="utf-8"))["files"]
            except (ValueError, KeyError, TypeError) as err:
                raise DownloadError(
                    f"{self.path}: not a valid lock file ({err}); restore it or delete it (every file is then "
                    "fetched and recorded again)."
                ) from err

    def get(self, rel: str) -> dict[str, Any] | None:
        return self.files.get(rel)

    def of_dataset(self, name: str) -> dict[str, dict[str, Any]]:
        return {rel: rec for rel, rec in self.files.items() if rec.get("dataset") == name}

    def record(self, rel: str, **entry: Any) -> None:
        self.files[rel] = {**self.files.get(rel, {}), **entry}
        text = json.dumps({"format": 1, "files": dict(sorted(self.files.items()))}, indent=2) + "\n"
        write_text(self.path, text)


# ------------------------------------------------------------------------------------------------ hashing, fetching


def file_digests(path: Path, md5: bool = False) -> tuple[str, str | None]:
    """sha256 (and optionally md5, for sources that publish one) hex digests of ``path``, in one read."""
    sha = hashlib.sha256()
    other = hashlib.md5(usedforsecurity=False) if md5 else None
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            sha.update(chunk)
            if other is not None:
                other.update(chunk)
    return sha.hexdigest(), other.hexdigest() if other else None


def _network_errors() -> tuple[type[BaseException], ...]:
    """Exceptions that mean "the transfer failed" (huggingface_hub's HTTP stack changed across versions)."""
    from huggingface_hub.errors import HfHubHTTPError

    errors: list[type[BaseException]] = [OSError, HfHubHTTPError]
    for module in ("httpx2", "httpx", "requests"):
        try:
            errors.append(importlib.import_module(module).HTTPError)
        except (ImportError, AttributeError):
            pass
    return tuple(errors)


def _one_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return text[0] if text else type(err).__name__


def _fetch(remote: Remote, part: Path, mirror: str | None) -> tuple[Path, dict[str, Any]]:
    """Download ``remote`` completely; returns the downloaded file and what the server told about it.

    A plain download goes to ``part`` and resumes from its current size (HTTP Range); a Hub download resumes through
    huggingface_hub's own ``.incomplete`` file in a folder beside ``part``. (Not :func:`~.io.atomic_path`, which
    removes its temporary file on failure: a partial download must survive to be resumed. The caller renames the
    checked file into place, so the final name still only ever holds a complete file.)
    """
    from huggingface_hub.errors import HfHubHTTPError

    part.parent.mkdir(parents=True, exist_ok=True)
    url = mirror_url(remote.url, mirror) if mirror else remote.url
    try:
        if remote.hub and not mirror:
            return _fetch_hub(remote, part)
        from huggingface_hub.file_download import http_get

        resume = part.stat().st_size if part.exists() else 0
        try:
            # unbuffered: every received chunk is on disk, so a killed run resumes from all of it
            with open(part, "ab", buffering=0) as fh:
                http_get(url, fh, resume_size=resume, displayed_filename=remote.name)
        except HfHubHTTPError as err:
            # 416: the range starts at the end, i.e. a run was stopped after its last byte; the checksums decide
            if not (resume and getattr(err.response, "status_code", None) == 416):
                raise
        return part, {}
    except _network_errors() as err:
        if part.is_file() and part.stat().st_size == 0:  # nothing to resume from
            part.unlink()
        raise DownloadError(
            f"{remote.name}: download from {url} failed ({_one_line(err)}). Check the network, the address or the "
            f"mirror (--mirror / {MIRROR_ENV}), then re-run (a partial download resumes where it stopped)."
        ) from err


def _fetch_hub(remote: Remote, part: Path) -> tuple[Path, dict[str, Any]]:
    """Fetch a Hugging Face dataset file at one resolved commit (recorded in the lock)."""
    from huggingface_hub import get_hf_file_metadata, hf_hub_download, hf_hub_url

    repo, file, revision = remote.hub  # type: ignore[misc]
    meta = get_hf_file_metadata(hf_hub_url(repo, file, repo_type="dataset", revision=revision))
    commit = meta.commit_hash or revision
    # huggingface_hub keeps its resumable ``.incomplete`` file in this folder until the download completes
    local_dir = part.with_name(f"{part.name}.hub")
    path = hf_hub_download(repo, file, repo_type="dataset", revision=commit, local_dir=local_dir)
    os.replace(path, part)
    shutil.rmtree(local_dir, ignore_errors=True)
    info: dict[str, Any] = {"commit": commit}
    if meta.etag and _SHA256.fullmatch(meta.etag):  # the Hub's ETag of a large (LFS) file is its sha256
        info["etag_sha256"] = meta.etag
    return part, info


def _check_fetched(path: Path, remote: Remote, expected: str | None, origin: str, shown_url: str) -> str:
    """sha256 of a fresh download, checked against ``expected`` and torchgeo's md5; on mismatch nothing is kept."""
    sha, md5 = file_digests(path, md5=remote.md5 is not None)
    problem = None
    if expected and sha != expected:
        problem = f"sha256 {sha}, expected {expected} ({origin})"
    elif remote.md5 and md5 != remote.md5:
        problem = f"md5 {md5}, expected {remote.md5} (declared by torchgeo)"
    if problem:
        path.unlink(missing_ok=True)
        raise DownloadError(
            f"{remote.name}: the file downloaded from {shown_url} has {problem}; nothing was kept. Check the source "
            "or the mirror; if the source really changed, remove its entry from the lock file and re-run."
        )
    return sha


def _verify_present(path: Path, expected: str, origin: str) -> None:
    """Check a file already on disk against a known sha256 (no network)."""
    sha, _ = file_digests(path)
    if sha != expected:
        raise DownloadError(
            f"{path}: sha256 is {sha}, expected {expected} ({origin}); delete {path} and re-run "
            "`smarties data download` to fetch it again."
        )


# ------------------------------------------------------------------------------------------------ extraction


def extract(archive: Path, into: Path, member: str | None = None) -> None:
    """Unpack ``archive`` (zip or tar, any compression) so that ``into`` holds its ``member`` folder (or all of it).

    Members are unpacked into a hidden folder beside ``into`` (refusing absolute paths, ``..`` and links out of it),
    then renamed into place: a missing ``into`` appears complete or not at all; an existing one gains the new entries
    and keeps its own files.

    Raises:
        DownloadError: not a zip/tar archive, an unsafe member, or no ``member`` folder at its top.
    """
    into.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_dir(into.parent, f".{into.name}.extract-")  # the dataset folder gets the umask's mode, not 0700
    try:
        _unpack(archive, tmp)
        src = tmp / member if member else tmp
        if not src.is_dir():
            top = sorted(p.name for p in tmp.iterdir())
            raise DownloadError(
                f"{archive}: no folder {member!r} at the top of the archive (found {top}); the archive is not the "
                "declared one: delete it and re-run, or check the mirror."
            )
        _merge(src, into)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _unpack(archive: Path, dest: Path) -> None:
    bar = {"desc": f"extracting {archive.name}", "unit": " files", "disable": None, "leave": False}
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as zf:
            base = dest.resolve()
            for info in zf.infolist():
                if not (dest / info.filename).resolve().is_relative_to(base):
                    raise DownloadError(f"{archive}: refusing member {info.filename!r}, which points outside the "
                                        "extraction folder; the archive is unsafe: delete it.")
            for info in tqdm(zf.infolist(), **bar):
                zf.extract(info, dest)
    elif tarfile.is_tarfile(archive):
        if not hasattr(tarfile, "data_filter"):
            raise DownloadError(f"{archive}: safe tar extraction needs Python >= 3.11.4; upgrade Python.")
        try:
            with tarfile.open(archive) as tf:
                for info in tqdm(tf, **bar):  # streamed: one pass over a compressed archive
                    tf.extract(info, dest, filter="data")
        except tarfile.FilterError as err:
            raise DownloadError(f"{archive}: refusing member {err.tarinfo.name!r} ({err}); the archive is unsafe: "
                                "delete it.") from err
    else:
        raise DownloadError(f"{archive}: neither a zip nor a tar archive; delete it and re-run.")


def _merge(src: Path, dest: Path) -> None:
    """Move ``src`` to ``dest`` (one rename when ``dest`` is absent); existing files in ``dest`` are kept."""
    if not dest.exists():
        os.replace(src, dest)
        return
    for child in src.iterdir():
        target = dest / child.name
        if child.is_dir() and target.is_dir():
            _merge(child, target)
        elif not target.exists():
            os.replace(child, target)


# ------------------------------------------------------------------------------------------------ datasets


@dataclass
class _Run:
    root: Path
    sources: Mapping[str, Any]
    lock: Lock
    mirror: str | None
    keep_archives: bool
    log: Callable[[str], None]
    # where the split files' sha256 come from: the authors' published ones, or a sources table of the user's
    declared: str = "published for the authors' commit"


def _ensure_split(fname: str, run: _Run) -> bool:
    """One of the authors' split files under ``<root>/<folder>/<fname>``; True if it was fetched."""
    table = run.sources["splits"]
    info = table["files"].get(fname)
    if info is None:
        raise DownloadError(f"{fname}: not a declared split file; known: {', '.join(table['files'])}.")
    rel = f"{table['folder']}/{fname}"
    final = run.root / rel
    locked = run.lock.get(rel)
    expected = info.get("sha256") or (locked or {}).get("sha256")
    origin = run.declared if info.get("sha256") else f"recorded in {run.lock.path}"
    if final.exists():
        if expected:
            _verify_present(final, expected, origin)
        else:  # placed by hand, no published checksum: pin what is there
            run.lock.record(rel, url=None, sha256=file_digests(final)[0], size=final.stat().st_size, complete=True)
        return False
    remote = Remote(fname, table["url"].format(commit=table["commit"], name=fname), sha256=info.get("sha256"))
    shown = mirror_url(remote.url, run.mirror) if run.mirror else remote.url
    run.log(f"  fetching {rel} from {shown}")
    path, _ = _fetch(remote, final.with_name(f".{fname}.part"), run.mirror)
    sha = _check_fetched(path, remote, expected, origin, shown)
    os.replace(path, final)
    check = f"sha256 {run.declared}" if info.get("sha256") else "no published sha256: pinned here"
    run.lock.record(rel, url=remote.url, sha256=sha, size=final.stat().st_size, complete=True, checked=check)
    return True


def _ensure_file(name: str, spec: Mapping[str, Any], run: _Run) -> bool:
    """One ``files`` entry of a dataset, fetched and extracted or placed; True if anything was done."""
    extract_spec = spec.get("extract")
    remote = _remote(spec, None, run.mirror)
    final = run.root / (f"{DOWNLOADS}/{remote.name}" if extract_spec else spec["save_as"])
    rel = final.relative_to(run.root).as_posix()
    locked = run.lock.get(rel)
    origin = f"recorded in {run.lock.path} on the first download"
    placed = run.root / extract_spec["into"] if extract_spec else final
    if locked and locked.get("complete") and placed.exists():
        if final.exists():  # a file used as it is, or a kept archive
            _verify_present(final, locked["sha256"], origin)
        return False
    if final.exists():  # a kept archive, or a run stopped before extracting it: reuse it
        sha = file_digests(final)[0]
        if locked and sha != locked["sha256"]:
            raise DownloadError(f"{final}: sha256 is {sha}, expected {locked['sha256']} ({origin}); delete {final} "
                                "and re-run `smarties data download` to fetch it again.")
        if not locked:
            run.lock.record(rel, url=remote.url, sha256=sha, size=final.stat().st_size, dataset=name, complete=False)
    else:
        remote = _remote(spec, locked, run.mirror)  # a Hub file is re-fetched at the commit the lock recorded
        shown = mirror_url(remote.url, run.mirror) if run.mirror else remote.url
        run.log(f"  fetching {remote.name} from {shown}")
        path, info = _fetch(remote, final.with_name(f".{final.name}.part"), run.mirror)
        if locked:
            expected, source = locked["sha256"], origin
        else:
            expected, source = remote.sha256 or info.get("etag_sha256"), "published" if remote.sha256 else "Hub ETag"
        sha = _check_fetched(path, remote, expected, source, shown)
        os.replace(path, final)
        run.lock.record(rel, url=remote.url, sha256=sha, size=final.stat().st_size, dataset=name,
                        complete=not extract_spec, **info)
    if extract_spec:
        run.log(f"  extracting {remote.name} into {placed}")
        extract(final, placed, extract_spec.get("member"))
        run.lock.record(rel, complete=True, extracted_to=extract_spec["into"])
        if not run.keep_archives:
            final.unlink()
    return True


def _is_complete(name: str, entry: Mapping[str, Any], run: _Run) -> bool:
    """Every ``expect`` path exists, and every file this tool started for the dataset was finished."""
    if not all((run.root / rel).exists() for rel in entry.get("expect", [])):
        return False
    records = run.lock.of_dataset(name)
    if not records:  # placed by hand: trusted as it is
        return True
    return len(records) >= len(entry.get("files", [])) and all(rec.get("complete") for rec in records.values())


def _ensure_dataset(name: str, run: _Run) -> Status:
    entry = run.sources["datasets"][name]
    status = Status(name, entry.get("title", name))
    errors: list[str] = []
    fetched = False
    for fname in entry.get("splits", []):
        try:
            fetched |= _ensure_split(fname, run)
        except DownloadError as err:  # one missing list does not stop the data
            errors.append(str(err))
    try:
        if _is_complete(name, entry, run):
            for rel, rec in run.lock.of_dataset(name).items():  # files kept as they were fetched: check them
                if (run.root / rel).is_file():
                    _verify_present(run.root / rel, rec["sha256"], f"recorded in {run.lock.path}")
        else:
            for spec in entry.get("files", []):
                fetched |= _ensure_file(name, spec, run)
            absent = [rel for rel in entry.get("expect", []) if not (run.root / rel).exists()]
            if absent:
                raise DownloadError(f"{status.title}: {run.root / absent[0]} is missing after extraction: the "
                                    "archive layout differs from the declared one; check the source or the mirror.")
    except DownloadError as err:
        errors.append(str(err))
    manual_missing = [rel for rel in entry.get("manual_expect", []) if not (run.root / rel).exists()]
    if errors:
        status.state = "error"
        status.messages += errors
    elif manual_missing:
        status.state = "missing"
    elif fetched:
        status.state = "downloaded"
    if manual_missing:
        status.messages.append(f"needs manual steps ({run.root / manual_missing[0]} is missing):")
        status.messages += ["  " + line for line in entry["manual"].format(root=run.root).strip().splitlines()]
    return status


def _ensure_splits(run: _Run) -> Status:
    status = Status(SPLITS, f"split files ({run.sources['splits']['folder']}/)")
    errors = []
    fetched = False
    for fname in run.sources["splits"]["files"]:
        try:
            fetched |= _ensure_split(fname, run)
        except DownloadError as err:  # one missing list does not stop the others
            errors.append(str(err))
    if errors:
        status.state = "error"
        status.messages += errors
    elif fetched:
        status.state = "downloaded"
    return status


def download(
    names: Sequence[str],
    root: str | Path,
    *,
    mirror: str | None = None,
    sources: Mapping[str, Any] | None = None,
    keep_archives: bool = False,
    log: Callable[[str], None] = print,
) -> list[Status]:
    """Fetch, check and lay out the named datasets (none = all, with every split file) under ``root``.

    Args:
        names: dataset names (case-insensitive, aliases accepted); ``"splits"`` selects the split files.
        root: the data root (``smarties bench run --data-root``).
        mirror: fetch every file from ``<mirror>/<original host>/<original path>`` instead.
        sources: the sources table (default: the shipped ``data/sources.yaml``); the split files' checksums of
            another table are recorded as declared by it, not as the authors' published ones.
        keep_archives: keep fetched archives under ``<root>/downloads/`` after extraction.
        log: where progress lines go.

    Returns:
        One :class:`Status` per selected name, in order.

    Raises:
        DownloadError: an unknown name or an unreadable lock file.
    """
    declared = "published for the authors' commit" if sources is None else "declared in the sources table given"
    sources = sources if sources is not None else load_sources()
    selected = resolve_names(names, sources)
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    run = _Run(root, sources, Lock(root), mirror, keep_archives, log, declared)
    statuses = []
    for name in selected:
        title = SPLITS if name == SPLITS else sources["datasets"][name].get("title", name)
        log(f"{title}:")
        try:
            status = _ensure_splits(run) if name == SPLITS else _ensure_dataset(name, run)
        except DownloadError as err:
            status = Status(name, title, "error", [str(err)])
        log(f"  {status.state}")
        for message in status.messages:
            log(f"  {message}")
        statuses.append(status)
    return statuses


# ------------------------------------------------------------------------------------------------ command line


def main(argv: Sequence[str] | None = None, *, sources: Mapping[str, Any] | None = None) -> int:
    """``smarties data download [NAMES...] --root DIR``: 0 when everything asked for is present, 1 otherwise.

    ``--sources FILE`` (or ``sources=``) replaces the shipped table: a private mirror whose files differ, or tests.
    """
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--sources", type=Path)
    known, _ = pre.parse_known_args(argv)
    if known.sources is not None:
        if not known.sources.is_file():
            print(f"error: --sources {known.sources}: no such file (a table in the layout of the shipped "
                  f"{SOURCES_FILE.name})", file=sys.stderr)
            return 2
        sources = load_sources(known.sources)
    custom = sources  # None: the shipped table
    table = sources if sources is not None else load_sources()
    names = ", ".join([*table["datasets"], SPLITS])
    parser = argparse.ArgumentParser(prog="smarties data", description="Evaluation datasets and split files.")
    sub = parser.add_subparsers(dest="command", required=True)
    dl = sub.add_parser(
        "download",
        help="fetch, check and lay out datasets under --root",
        description=f"Fetch, check and lay out datasets for `smarties bench run --data-root`. Names: {names}.",
    )
    dl.add_argument("names", nargs="*", metavar="NAME", help="datasets to fetch (default: all, with all split files)")
    dl.add_argument("--root", type=Path, default=Path("data"), help="data root (default: ./data)")
    dl.add_argument("--mirror", default=os.environ.get(MIRROR_ENV) or None,
                    help=f"fetch every file from MIRROR/<host>/<path> (default: ${MIRROR_ENV})")
    dl.add_argument("--keep-archives", action="store_true", help=f"keep archives under ROOT/{DOWNLOADS}/")
    dl.add_argument("--sources", type=Path, metavar="FILE",
                    help=f"a sources table of your own instead of the shipped {SOURCES_FILE.name} (same layout: URLs, "
                         "checksums, archive layouts), e.g. for a mirror whose files differ")
    args = parser.parse_args(argv)
    try:
        statuses = download(args.names, args.root, mirror=args.mirror, sources=custom,
                            keep_archives=args.keep_archives, log=lambda line: print(line, flush=True))
    except DownloadError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    present = [s.name for s in statuses if s.ok]
    missing = [s.name for s in statuses if not s.ok]
    print(f"summary: present: {', '.join(present) or '-'}; missing: {', '.join(missing) or '-'}; "
          f"lock file: {args.root / LOCK_NAME}")
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main())
