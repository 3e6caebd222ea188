"""``smarties data download``: the evaluation datasets and the SMARTIES authors' split files, laid out for the configs.

Sources, archive layouts and the published checksums are declared in ``data/sources.yaml`` (shipped with the
package). Every fetched file is verified before it is used: against the published sha256 / md5 / git blob id / size
where one exists, otherwise against what the server itself states (its size, the Hub's sha256 ETag, ``Content-MD5``),
and an HTML page is never accepted as a data file. The sha256 of every fetched file is recorded in
``<root>/smarties-data.lock.json``; later runs check the files still on disk against it, and a later download of the
same file must match it.

Files are fetched with :func:`smarties_terratorch.fetch.http_download` (resumable, verified, retried) and archives
unpacked with :func:`smarties_terratorch.fetch.extract_archive` (unsafe members refused, renamed into place, so a
folder the configs read is either complete or absent). Hugging Face dataset files are resolved to one commit with
huggingface_hub's public API (honours ``HF_ENDPOINT`` and ``HF_TOKEN``), unless a mirror is given, which then serves
every file as ``<mirror>/<original host>/<original path>``. Nothing is written outside ``--root`` (every path of the
sources table must stay inside it, and no symbolic link below it is followed), and one run at a time works on a root
(a file lock).

Usage::

    smarties data download --root data                      # every dataset and every split file
    smarties data download eurosat splits --root data       # EuroSAT_MS (with its split files) + all split files
    smarties data download --root data --mirror https://mirror.example.org/smarties
    smarties data download eurosat --root data --mirror URL --sources my_sources.yaml   # another sources table
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import re
import stat
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlsplit

import yaml

from .fetch import (
    Check,
    DamagedArchiveError,
    FetchError,
    describe_os_error,
    extract_archive,
    file_sha256,
    http_download,
    lstat_or_none,
    one_line,
    part_path,
    verify_file,
)
from .io import OutputError, write_text

__all__ = [
    "LOCK_NAME",
    "MIRROR_ENV",
    "RUN_LOCK_NAME",
    "SOURCES_FILE",
    "DownloadError",
    "Lock",
    "Status",
    "check_mirror",
    "check_sources",
    "download",
    "load_sources",
    "main",
    "mirror_url",
    "resolve_names",
]

#: The declared sources (URLs, layouts, published checksums).
SOURCES_FILE = Path(__file__).parent / "data" / "sources.yaml"
#: The lock file (the record of every fetched file), under the data root.
LOCK_NAME = "smarties-data.lock.json"
#: The file a run holds locked for its whole duration, under the data root: one run at a time per root.
RUN_LOCK_NAME = ".smarties-data.run.lock"
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
#: What to check when an address fails, in the messages of the HTTP layer.
_WHERE = f"the address, the mirror (--mirror / {MIRROR_ENV})"


class DownloadError(FetchError):
    """A sources table, name, mirror, root or lock file that cannot be used; the message names it and the fix.

    A file that cannot be fetched, checked or unpacked raises this class's base,
    :class:`~smarties_terratorch.fetch.FetchError`.
    """


@dataclass(frozen=True)
class Remote:
    """One file to fetch: its name, its original address and what is published about it."""

    name: str
    url: str  # the original address (recorded in the lock; a mirror path is derived from it)
    hub: tuple[str, str, str] | None = None  # (repo, file, revision) of a Hugging Face dataset file
    sha256: str | None = None  # published checksum
    md5: str | None = None  # published md5 (Zenodo, torchgeo)
    git_blob: str | None = None  # git blob id (sha1 of b"blob <size>\0" + content) from a published commit
    size: int | None = None  # published size in bytes


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
    """The declared sources (``data/sources.yaml`` by default).

    Raises:
        DownloadError: the file cannot be read, is not YAML, or lacks the ``splits`` / ``datasets`` layout.
    """
    try:
        table = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as err:
        raise DownloadError(f"{path}: not a readable sources table ({one_line(err)}); give a table in the layout "
                            f"of the shipped {SOURCES_FILE.name}.") from err
    check_sources(table, str(path))
    return table


def check_sources(table: Any, origin: str = "the sources table") -> None:
    """Check the layout of a sources table (a mapping of ``splits`` and ``datasets``).

    Raises:
        DownloadError: a missing or mis-typed part (named).
    """
    fix = f"give a table in the layout of the shipped {SOURCES_FILE.name}"
    if not isinstance(table, Mapping) or not isinstance(table.get("datasets"), Mapping):
        raise DownloadError(f"{origin}: not a sources table (no 'datasets' mapping); {fix}.")
    splits = table.get("splits")
    if not isinstance(splits, Mapping) or not isinstance(splits.get("files"), Mapping) \
            or not all(isinstance(splits.get(k), str) for k in ("url", "commit", "folder")):
        raise DownloadError(f"{origin}: 'splits' needs url, commit, folder and a 'files' mapping; {fix}.")
    for name, entry in table["datasets"].items():
        if not isinstance(entry, Mapping) or not isinstance(entry.get("files", []), list):
            raise DownloadError(f"{origin}: dataset {name!r} needs a mapping with a 'files' list; {fix}.")


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


def check_mirror(mirror: str) -> str:
    """``mirror`` if it is an ``http(s)://host[/path]`` address.

    Raises:
        DownloadError: anything else (the value is named).
    """
    parts = urlsplit(mirror)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment:
        raise DownloadError(f"--mirror {mirror!r}: not an http(s)://host[:port][/path] address; give the mirror's "
                            f"base URL, e.g. https://mirror.example.org/smarties (or unset {MIRROR_ENV}).")
    try:
        parts.port  # noqa: B018 - raises on a malformed port
    except ValueError as err:
        raise DownloadError(f"--mirror {mirror!r}: {err}; give the mirror's base URL.") from err
    return mirror


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
    name = PurePosixPath(urlsplit(url).path).name
    if name in ("", ".", ".."):
        raise DownloadError(f"{url}: no file name at the end of the address; fix the sources table.")
    return Remote(name=name, url=url, hub=hub_ref, sha256=spec.get("sha256"), md5=md5,
                  git_blob=spec.get("git_blob"), size=spec.get("bytes"))


# ------------------------------------------------------------------------------------------------ confined paths


def _inside(root: Path, rel: str, what: str, *, write: bool = True) -> Path:
    """``root / rel`` for a path from the sources table, refused unless it stays inside ``root``.

    With ``write`` (the default), no existing component below ``root`` may be a symbolic link either (a path only
    read, such as a dataset folder placed by hand, may be one).

    Raises:
        DownloadError: an absolute path, a ``..`` component, or (``write``) a symbolic link on the way.
    """
    if not isinstance(rel, str) or not rel or rel.startswith(("/", "\\")) or Path(rel).is_absolute() \
            or ".." in PurePosixPath(rel.replace("\\", "/")).parts:
        raise DownloadError(f"{what} {rel!r} in the sources table: must be a path relative to the data root without "
                            "'..'; fix the sources table.")
    path = root / rel
    if write:
        _no_links_below(root, path)
    return path


def _no_links_below(root: Path, path: Path) -> None:
    """Refuse ``path`` if any existing component below ``root`` is a symbolic link (it could lead out of it)."""
    current = root
    for part in path.relative_to(root).parts:
        current = current / part
        if current.is_symlink():
            raise DownloadError(f"{current} is a symbolic link; refusing to write through it (it could lead outside "
                                f"{root}). Remove the link (or replace it with a real folder) and re-run.")


def _make_dirs(root: Path, folder: Path) -> None:
    """Create ``folder`` below ``root`` one level at a time, never through a symbolic link."""
    current = root
    for part in folder.relative_to(root).parts:
        current = current / part
        st = lstat_or_none(current)
        if st is None:
            current.mkdir(exist_ok=True)
        elif stat.S_ISLNK(st.st_mode):
            _no_links_below(root, current)
        elif not stat.S_ISDIR(st.st_mode):
            raise DownloadError(f"{current} is a file where a folder is needed; move it away and re-run.")


# ------------------------------------------------------------------------------------------------ lock file


class Lock:
    """``<root>/smarties-data.lock.json``: root-relative path -> url, sha256, size, dataset, completion.

    Read once the run holds the root's run lock, and saved atomically after every change, so an interrupted run
    keeps what it recorded.

    Raises:
        DownloadError: the file is not a lock file of this tool (malformed JSON or wrong shape).
    """

    def __init__(self, root: Path) -> None:
        self.path = root / LOCK_NAME
        self.files: dict[str, dict[str, Any]] = {}
        if lstat_or_none(self.path) is not None:
            self.files = self._read()

    def _read(self) -> dict[str, dict[str, Any]]:
        fix = "restore it from a backup or delete it (every file is then fetched, checked and recorded again)"
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as err:
            raise DownloadError(f"{self.path}: not a readable lock file ({one_line(err)}); {fix}.") from err
        files = data.get("files") if isinstance(data, dict) else None
        if not isinstance(files, dict):
            raise DownloadError(f"{self.path}: not a lock file of this tool (no 'files' mapping); {fix}.")
        for rel, rec in files.items():
            if not isinstance(rec, dict) or not _SHA256.fullmatch(str(rec.get("sha256"))):
                raise DownloadError(f"{self.path}: entry {rel!r} has no valid sha256; {fix}.")
        return files

    def get(self, rel: str) -> dict[str, Any] | None:
        return self.files.get(rel)

    def of_dataset(self, name: str) -> dict[str, dict[str, Any]]:
        return {rel: rec for rel, rec in self.files.items() if rec.get("dataset") == name}

    def record(self, rel: str, **entry: Any) -> None:
        self.files[rel] = {**self.files.get(rel, {}), **entry}
        self._save()

    def drop(self, rel: str) -> None:
        """Forget ``rel`` (its next download is accepted on its own checks, not the earlier pin)."""
        if self.files.pop(rel, None) is not None:
            self._save()

    def _save(self) -> None:
        text = json.dumps({"format": 1, "files": dict(sorted(self.files.items()))}, indent=2) + "\n"
        try:
            write_text(self.path, text)
        except OutputError as err:
            raise DownloadError(one_line(err)) from err


@contextmanager
def _run_lock(root: Path, log: Callable[[str], None]) -> Iterator[None]:
    """Hold ``<root>/.smarties-data.run.lock`` for the whole run; a second run on the root waits for the first."""
    from filelock import FileLock, Timeout

    path = root / RUN_LOCK_NAME
    if (st := lstat_or_none(path)) is not None and not stat.S_ISREG(st.st_mode):
        raise DownloadError(f"{path} is not a regular file (a link?); delete it and re-run.")
    lock = FileLock(path)
    try:
        try:
            lock.acquire(timeout=0)
        except Timeout:
            log(f"waiting for another `smarties data download` run on {root} to finish (lock {path}) ...")
            lock.acquire()
    except OSError as err:
        raise DownloadError(describe_os_error(path, err)) from err
    try:
        yield
    finally:
        lock.release()


# ------------------------------------------------------------------------------------------------ errors


def _message(err: Exception) -> str:
    """The one-line message of a dataset's failure (an ``OSError`` names its file and the fix)."""
    if isinstance(err, OSError) and not isinstance(err, OutputError):
        return describe_os_error(Path(err.filename or "?"), err)
    return str(err) if isinstance(err, (FetchError, OutputError)) else f"{type(err).__name__}: {one_line(err)}"


# ------------------------------------------------------------------------------------------------ checks


def _verify_present(path: Path, expected: str, origin: str, git_blob: bool = False) -> None:
    """Check a file already on disk against a known sha256 (or git blob id) (no network)."""
    verify_file(path, Check("git_blob" if git_blob else "sha256", expected, origin),
                f"delete {path} and re-run `smarties data download` to fetch it again.")


def _fetch(remote: Remote, final: Path, run: _Run, recorded: str | None, recorded_origin: str,
           declared_by: str) -> tuple[str, str, dict[str, Any]]:
    """Download ``remote`` to ``final`` (from the mirror, if any) and check it against everything known about it.

    Returns:
        Its sha256, what it was checked against (for the lock) and what the server stated.
    """
    checks = [Check(what, value, f"{label} {declared_by}") for what, value, label in (
        ("size", remote.size, "size"), ("sha256", remote.sha256, "sha256"), ("md5", remote.md5, "md5"),
        ("git_blob", remote.git_blob, "git blob id")) if value is not None]
    try:
        got = http_download(
            mirror_url(remote.url, run.mirror) if run.mirror else remote.url, final,
            expected=checks, recorded=Check("sha256", recorded, recorded_origin) if recorded else None,
            hub=remote.hub if not run.mirror else None, name=remote.name, where=_WHERE,
            on_mismatch="Check the source or the mirror; if the source really changed, remove its entry from the lock "
                        "file and re-run.",
            log=lambda line: run.log(f"  {line}"),
        )
    except OSError as err:  # the part is kept: the next run resumes from it
        raise DownloadError(describe_os_error(part_path(final), err,
                                               " (the download resumes from what was kept)")) from err
    passed = got["checked"]
    published = [o for o in passed if declared_by in o]
    checked = "; ".join(passed) if published else "; ".join([*passed, "first use: sha256 pinned here"])
    return got["sha256"], checked, got["server"]


# ------------------------------------------------------------------------------------------------ datasets


@dataclass
class _Run:
    root: Path
    sources: Mapping[str, Any]
    lock: Lock
    mirror: str | None
    keep_archives: bool
    log: Callable[[str], None]
    # where the checksums come from: published ones (the shipped table), or a sources table of the user's
    declared: str = "published for the authors' commit"
    declared_files: str = "published"


def _ensure_split(fname: str, run: _Run) -> bool:
    """One of the authors' split files under ``<root>/<folder>/<fname>``; True if it was fetched."""
    table = run.sources["splits"]
    info = table["files"].get(fname)
    if info is None:
        raise DownloadError(f"{fname}: not a declared split file; known: {', '.join(table['files'])}.")
    _inside(run.root, table["folder"], "split folder", write=False)
    rel = f"{table['folder']}/{fname}"
    final = _inside(run.root, rel, "split file", write=False)
    locked = run.lock.get(rel)
    if final.exists():
        if info.get("sha256"):
            _verify_present(final, info["sha256"], f"sha256 {run.declared}")
        elif info.get("git_blob"):
            _verify_present(final, info["git_blob"], f"git blob id {run.declared}", git_blob=True)
        elif locked:
            _verify_present(final, locked["sha256"], f"recorded in {run.lock.path}")
        else:  # placed by hand, nothing published: pin what is there
            run.lock.record(rel, url=None, sha256=file_sha256(final), size=final.stat().st_size, complete=True)
        return False
    remote = Remote(fname, table["url"].format(commit=table["commit"], name=fname), sha256=info.get("sha256"),
                    git_blob=info.get("git_blob"))
    shown = mirror_url(remote.url, run.mirror) if run.mirror else remote.url
    run.log(f"  fetching {rel} from {shown}")
    _inside(run.root, rel, "split file")
    _make_dirs(run.root, final.parent)
    published = info.get("sha256") or info.get("git_blob")
    sha, checked, _ = _fetch(remote, final, run, None if published else (locked or {}).get("sha256"),
                             f"recorded in {run.lock.path}", run.declared)
    run.lock.record(rel, url=remote.url, sha256=sha, size=final.stat().st_size, complete=True, checked=checked)
    return True


def _ensure_file(name: str, spec: Mapping[str, Any], run: _Run) -> bool:
    """One ``files`` entry of a dataset, fetched, verified and extracted or placed; True if anything was done."""
    extract_spec = spec.get("extract")
    remote = _remote(spec, None, run.mirror)
    if extract_spec:
        final = _inside(run.root, f"{DOWNLOADS}/{remote.name}", "archive")
        placed = _inside(run.root, extract_spec.get("into"), "extract.into")
    else:
        final = placed = _inside(run.root, spec.get("save_as"), "save_as")
    rel = final.relative_to(run.root).as_posix()
    locked = run.lock.get(rel)
    origin = f"recorded in {run.lock.path} on the first download"
    if locked and locked.get("complete") and placed.exists():
        if final.is_file():  # a file used as it is, or a kept archive
            _verify_present(final, locked["sha256"], origin)
        return False
    if final.is_file() and not final.is_symlink():  # a kept archive, or a run stopped before extracting it
        sha = file_sha256(final)
        if locked and sha != locked["sha256"]:
            raise DownloadError(f"{final}: sha256 is {sha}, expected {locked['sha256']} ({origin}); delete {final} "
                                "and re-run `smarties data download` to fetch it again.")
        if not locked:
            run.lock.record(rel, url=remote.url, sha256=sha, size=final.stat().st_size, dataset=name, complete=False)
    else:
        remote = _remote(spec, locked, run.mirror)  # a Hub file is re-fetched at the commit the lock recorded
        shown = mirror_url(remote.url, run.mirror) if run.mirror else remote.url
        run.log(f"  fetching {remote.name} from {shown}")
        _make_dirs(run.root, final.parent)
        sha, checked, server = _fetch(remote, final, run, (locked or {}).get("sha256"), origin, run.declared_files)
        extra = {"commit": server["commit"]} if "commit" in server else {}
        if "sha256" in server and remote.hub and not run.mirror:
            extra["etag_sha256"] = server["sha256"]
        run.lock.record(rel, url=remote.url, sha256=sha, size=final.stat().st_size, dataset=name,
                        complete=not extract_spec, checked=checked, **extra)
    if extract_spec:
        run.log(f"  extracting {remote.name} into {placed}")
        _make_dirs(run.root, placed.parent)
        _no_links_below(run.root, placed)
        try:
            extract_archive(final, placed, member=extract_spec.get("member"))
        except DamagedArchiveError as err:  # never pinned: the next run fetches it again
            final.unlink(missing_ok=True)
            run.lock.drop(rel)
            raise DownloadError(f"{err}; it was deleted: re-run to fetch it again (if that fails the same way, the "
                                "source or the mirror serves a damaged file).") from err
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
        except (FetchError, OSError) as err:  # one missing list does not stop the data
            errors.append(_message(err))
    try:
        for rel in [*entry.get("expect", []), *entry.get("manual_expect", [])]:
            _inside(run.root, rel, "expect", write=False)
        if _is_complete(name, entry, run):
            for rel, rec in run.lock.of_dataset(name).items():  # files kept as they were fetched: check them
                if (run.root / rel).is_file():
                    _verify_present(run.root / rel, rec["sha256"], f"recorded in {run.lock.path}")
        else:
            for spec in entry.get("files", []):
                fetched |= _ensure_file(name, spec, run)
            absent = [rel for rel in entry.get("expect", []) if not (run.root / rel).exists()]
            if absent:
                for rel in run.lock.of_dataset(name):  # unpinned: the next run fetches (and checks) it again
                    run.lock.drop(rel)
                raise DownloadError(f"{status.title}: {run.root / absent[0]} is missing after extraction: the "
                                    "archive layout differs from the declared one; check the source or the mirror, "
                                    "then re-run (the archive is fetched again).")
    except (FetchError, OSError) as err:
        errors.append(_message(err))
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
        except (FetchError, OSError) as err:  # one missing list does not stop the others
            errors.append(_message(err))
    if errors:
        status.state = "error"
        status.messages += errors
    elif fetched:
        status.state = "downloaded"
    return status


def _prepare_root(root: Path) -> None:
    st = root.stat() if root.exists() else None
    if st is not None and not stat.S_ISDIR(st.st_mode):
        raise DownloadError(f"--root {root} is a file, not a folder; give a folder (it is created if missing).")
    try:
        root.mkdir(parents=True, exist_ok=True)
    except FileExistsError as err:
        raise DownloadError(f"--root {root}: a file is in the way ({err.filename}); give another folder.") from err
    except OSError as err:
        raise DownloadError(describe_os_error(root, err)) from err
    if not os.access(root, os.W_OK):
        raise DownloadError(f"cannot write in --root {root} (read-only); choose a writable folder or fix its "
                            "permissions.")


def download(
    names: Sequence[str],
    root: str | Path,
    *,
    mirror: str | None = None,
    sources: Mapping[str, Any] | None = None,
    keep_archives: bool = False,
    log: Callable[[str], None] = print,
) -> list[Status]:
    """Fetch, verify and lay out the named datasets (none = all, with every split file) under ``root``.

    One run at a time works on a root (a second one waits); a dataset that fails does not stop the others.

    Args:
        names: dataset names (case-insensitive, aliases accepted); ``"splits"`` selects the split files.
        root: the data root (``smarties bench run --data-root``).
        mirror: fetch every file from ``<mirror>/<original host>/<original path>`` instead.
        sources: the sources table (default: the shipped ``data/sources.yaml``); the checksums of another table are
            recorded as declared by it, not as the authors' published ones.
        keep_archives: keep fetched archives under ``<root>/downloads/`` after extraction.
        log: where progress lines go.

    Returns:
        One :class:`Status` per selected name, in order.

    Raises:
        DownloadError: an unknown name, a malformed mirror, a root that is a file or read-only, or an unreadable
            lock file.
    """
    declared = "published for the authors' commit" if sources is None else "declared in the sources table given"
    declared_files = "published" if sources is None else "declared in the sources table given"
    sources = sources if sources is not None else load_sources()
    check_sources(sources)
    selected = resolve_names(names, sources)
    if mirror:
        check_mirror(mirror)
    root = Path(root)
    _prepare_root(root)
    with _run_lock(root, log):
        run = _Run(root, sources, Lock(root), mirror, keep_archives, log, declared, declared_files)
        statuses = []
        for name in selected:
            title = SPLITS if name == SPLITS else sources["datasets"][name].get("title", name)
            log(f"{title}:")
            try:
                status = _ensure_splits(run) if name == SPLITS else _ensure_dataset(name, run)
            except Exception as err:  # noqa: BLE001 - one dataset's failure, even a surprise, must not stop the others
                status = Status(name, title, "error", [_message(err)])
            log(f"  {status.state}")
            for message in status.messages:
                log(f"  {message}")
            statuses.append(status)
    return statuses


# ------------------------------------------------------------------------------------------------ command line


def dry_run(names: Sequence[str], root: Path, sources: Mapping[str, Any]) -> int:
    """``--dry-run``: print the plan of :mod:`smarties_terratorch.plan` for ``names`` under ``root``; no request."""
    from .plan import format_plan, plan_datasets

    try:
        selected = resolve_names(names, sources)
    except DownloadError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(format_plan(plan_datasets(selected, root, sources, None)))
    return 0


def main(argv: Sequence[str] | None = None, *, sources: Mapping[str, Any] | None = None) -> int:
    """``smarties data download [NAMES...] --root DIR``: 0 when everything asked for is present, 1 otherwise.

    ``--sources FILE`` (or ``sources=``) replaces the shipped table: a private mirror whose files differ, or tests.
    Usage errors exit with 2, an interrupted run (Ctrl-C) with 130.
    """
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--sources", type=Path)
    known, _ = pre.parse_known_args(argv)
    try:
        if known.sources is not None:
            sources = load_sources(known.sources)
        elif sources is not None:
            check_sources(sources)
    except DownloadError as err:
        print(f"error: --sources {err}", file=sys.stderr)
        return 2
    custom = sources  # None: the shipped table
    table = sources if sources is not None else load_sources()
    names = ", ".join([*table["datasets"], SPLITS])
    parser = argparse.ArgumentParser(prog="smarties data", description="Evaluation datasets and split files.")
    sub = parser.add_subparsers(dest="command", required=True)
    dl = sub.add_parser(
        "download",
        help="fetch, verify and lay out datasets under --root",
        description=f"Fetch, verify and lay out datasets for `smarties bench run --data-root`. Names: {names}.",
    )
    dl.add_argument("names", nargs="*", metavar="NAME", help="datasets to fetch (default: all, with all split files)")
    dl.add_argument("--root", type=Path, default=Path("data"), help="data root (default: ./data)")
    dl.add_argument("--mirror", default=os.environ.get(MIRROR_ENV) or None,
                    help=f"fetch every file from MIRROR/<host>/<path> (default: ${MIRROR_ENV})")
    dl.add_argument("--keep-archives", action="store_true", help=f"keep archives under ROOT/{DOWNLOADS}/")
    dl.add_argument("--sources", type=Path, metavar="FILE",
                    help=f"a sources table of your own instead of the shipped {SOURCES_FILE.name} (same layout: URLs, "
                         "checksums, archive layouts), e.g. for a mirror whose files differ")
    dl.add_argument("--dry-run", action="store_true",
                    help="print what would be fetched (files, download and extracted sizes, the rows that read each "
                         "dataset, what is already present) and exit, without any network request")
    args = parser.parse_args(argv)
    if args.dry_run:
        return dry_run(args.names, args.root, table)
    try:
        statuses = download(args.names, args.root, mirror=args.mirror, sources=custom,
                            keep_archives=args.keep_archives, log=lambda line: print(line, flush=True))
    except DownloadError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\ninterrupted: re-run the same command to continue (partial downloads resume where they stopped).",
              file=sys.stderr)
        return 130
    present = [s.name for s in statuses if s.ok]
    missing = [s.name for s in statuses if not s.ok]
    print(f"summary: present: {', '.join(present) or '-'}; missing: {', '.join(missing) or '-'}; "
          f"lock file: {args.root / LOCK_NAME}")
    for s in statuses:
        if s.state == "error":
            print(f"  failed {s.name}: {s.messages[0]}" + (f" (+{len(s.messages) - 1} more above)"
                                                          if len(s.messages) > 1 else ""))
        elif not s.ok:
            print(f"  missing {s.name}: needs manual steps (printed above)")
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main())
