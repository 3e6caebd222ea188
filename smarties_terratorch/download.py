"""``smarties data download``: the evaluation datasets and the SMARTIES authors' split files, laid out for the configs.

Sources, archive layouts and the published checksums are declared in ``data/sources.yaml`` (shipped with the
package). Every fetched file is verified before it is used: against the published sha256 / md5 / git blob id / size
where one exists, otherwise against what the server itself states (its size, the Hub's sha256 ETag, ``Content-MD5``),
and an HTML page is never accepted as a data file. The sha256 of every fetched file is recorded in
``<root>/smarties-data.lock.json``; later runs check the files still on disk against it, and a later download of the
same file must match it.

Files are fetched with one small HTTP layer (the HTTP client huggingface_hub uses): a hidden ``.<name>.part`` file
beside the destination, resumed with ``Range`` + ``If-Range`` only while the server still serves the same file,
transient failures retried briefly with backoff. Hugging Face dataset files are resolved to one commit with
huggingface_hub's public API (honours ``HF_ENDPOINT`` and ``HF_TOKEN``), unless a mirror is given, which then serves
every file as ``<mirror>/<original host>/<original path>``. Archives are unpacked into a hidden folder beside their
destination (members that would land outside it are refused) and renamed into place, so a folder the configs read
is either complete or absent. Nothing is written outside ``--root`` (every path of the sources table must stay
inside it, and no symbolic link below it is followed), and one run at a time works on a root (a file lock).

Usage::

    smarties data download --root data                      # every dataset and every split file
    smarties data download eurosat splits --root data       # EuroSAT_MS (with its split files) + all split files
    smarties data download --root data --mirror https://mirror.example.org/smarties
    smarties data download eurosat --root data --mirror URL --sources my_sources.yaml   # another sources table
"""

from __future__ import annotations

import argparse
import base64
import binascii
import errno
import importlib
import json
import os
import re
import shutil
import socket
import stat
import sys
import tarfile
import time
import zipfile
import zlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlsplit

import yaml
from tqdm.auto import tqdm

from .fetch import CHUNK_SIZE, file_digests, file_sha256
from .io import OutputError, write_text
from .io.writer import temp_dir

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
    "extract",
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
#: Attempts per file after a transient failure (dropped connection, timeout, 5xx), and the first wait in seconds
#: (doubled after each attempt).
RETRIES = 3
BACKOFF = 1.0
#: An archive may unpack to at most this many times its own size (real datasets stay below 2x; a zip bomb does not).
MAX_EXPANSION = 100

_HUB_URL = re.compile(
    r"https?://(?:hf\.co|huggingface\.co)/datasets/(?P<repo>[^/]+/[^/]+)/resolve/(?P<revision>[^/]+)/(?P<file>[^?]+)"
)
_SHA256 = re.compile(r"[0-9a-f]{64}")
_RETRY_STATUS = {408, 425, 429, 500, 502, 503, 504}
_FULL_DISK = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)


class DownloadError(RuntimeError):
    """A download, check or extraction failed; the message names the file or URL and the fix."""


class _Transient(DownloadError):
    """A failure worth retrying (dropped connection, timeout, a 5xx answer)."""


class _Damaged(DownloadError):
    """An archive that cannot be unpacked (truncated, bad CRC, over the size limit)."""


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
        raise DownloadError(f"{path}: not a readable sources table ({_one_line(err)}); give a table in the layout "
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
        st = _lstat(current)
        if st is None:
            current.mkdir(exist_ok=True)
        elif stat.S_ISLNK(st.st_mode):
            _no_links_below(root, current)
        elif not stat.S_ISDIR(st.st_mode):
            raise DownloadError(f"{current} is a file where a folder is needed; move it away and re-run.")


def _lstat(path: Path) -> os.stat_result | None:
    try:
        return os.lstat(path)
    except FileNotFoundError:
        return None


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
        if _lstat(self.path) is not None:
            self.files = self._read()

    def _read(self) -> dict[str, dict[str, Any]]:
        fix = "restore it from a backup or delete it (every file is then fetched, checked and recorded again)"
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as err:
            raise DownloadError(f"{self.path}: not a readable lock file ({_one_line(err)}); {fix}.") from err
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
            raise DownloadError(_one_line(err)) from err


@contextmanager
def _run_lock(root: Path, log: Callable[[str], None]) -> Iterator[None]:
    """Hold ``<root>/.smarties-data.run.lock`` for the whole run; a second run on the root waits for the first."""
    from filelock import FileLock, Timeout

    path = root / RUN_LOCK_NAME
    if (st := _lstat(path)) is not None and not stat.S_ISREG(st.st_mode):
        raise DownloadError(f"{path} is not a regular file (a link?); delete it and re-run.")
    lock = FileLock(path)
    try:
        try:
            lock.acquire(timeout=0)
        except Timeout:
            log(f"waiting for another `smarties data download` run on {root} to finish (lock {path}) ...")
            lock.acquire()
    except OSError as err:
        raise DownloadError(_describe_os_error(path, err)) from err
    try:
        yield
    finally:
        lock.release()


# ------------------------------------------------------------------------------------------------ errors


def _one_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return text[0] if text else type(err).__name__


def _describe_os_error(path: Path, err: OSError, resume: str = "") -> str:
    """One line naming ``path``, what went wrong and the fix."""
    if err.errno in _FULL_DISK:
        return (f"disk full: writing {path} failed ({err.strerror or err}); free space on that disk (or raise the "
                f"file-size limit) and re-run{resume}.")
    if err.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        return f"cannot write {path} ({err.strerror or err}); choose a writable --root or fix its permissions."
    return f"{path}: {err.strerror or _one_line(err)}; fix that and re-run{resume}."


def _message(err: Exception) -> str:
    """The one-line message of a dataset's failure (an ``OSError`` names its file and the fix)."""
    if isinstance(err, OSError) and not isinstance(err, OutputError):
        return _describe_os_error(Path(err.filename or "?"), err)
    return str(err) if isinstance(err, (DownloadError, OutputError)) else f"{type(err).__name__}: {_one_line(err)}"


def _is_dns_failure(err: BaseException) -> bool:
    seen: BaseException | None = err
    while seen is not None:
        if isinstance(seen, socket.gaierror):
            return True
        seen = seen.__cause__ or seen.__context__
    return "name or service not known" in str(err).lower() or "nodename nor servname" in str(err).lower()


def _network_error(err: Exception, url: str, name: str) -> DownloadError:
    """A client exception as a one-line error: transient (retried) or not."""
    import httpx as http  # imported here: `smarties --help` and the dry run need no HTTP client
    if _is_dns_failure(err):
        host = urlsplit(url).hostname
        return DownloadError(f"{name}: cannot resolve host {host!r} of {url} (DNS failure); check the address, the "
                             f"mirror (--mirror / {MIRROR_ENV}) or the network, then re-run.")
    response = getattr(err, "response", None)
    code = getattr(response, "status_code", None)
    if code is not None:
        return _status_error(code, url, name)
    if isinstance(err, (http.TransportError, OSError)) and not isinstance(err, (http.UnsupportedProtocol,
                                                                                    http.ProxyError)):
        return _Transient(f"{url}: {_one_line(err)}")
    return DownloadError(f"{name}: download from {url} failed ({_one_line(err)}); check the address or the mirror.")


def _status_error(code: int, url: str, name: str) -> DownloadError:
    if code in _RETRY_STATUS:
        return _Transient(f"{url}: the server answered HTTP {code}")
    return DownloadError(f"{name}: download from {url} failed (HTTP {code}); check the address, the mirror (--mirror / "
                         f"{MIRROR_ENV}) or your access to it, then re-run.")


# ------------------------------------------------------------------------------------------------ fetching


def _content_range(value: str | None) -> tuple[int | None, int | None, int | None]:
    """(start, end, total) of a ``Content-Range`` header (``bytes 5-9/10`` or ``bytes */10``); Nones if absent."""
    match = re.fullmatch(r"\s*bytes\s+(?:(\d+)-(\d+)|\*)/(\d+|\*)\s*", value or "")
    if not match:
        return None, None, None
    start, end, total = (int(v) if v and v != "*" else None for v in match.groups())
    return start, end, total


def _content_md5(value: str | None) -> str | None:
    try:
        raw = base64.b64decode(value or "", validate=True)
    except (binascii.Error, ValueError):
        return None
    return raw.hex() if len(raw) == 16 else None


def _write_all(fd: int, data: bytes) -> None:
    """``os.write`` until every byte is on disk; a write that makes no progress is a full disk."""
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        if n <= 0:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        view = view[n:]


def _open_part(part: Path, offset: int) -> int:
    """The ``.part`` file for writing at ``offset`` (0 truncates), never through a symbolic link."""
    flags = os.O_WRONLY | os.O_CREAT | _NOFOLLOW | (os.O_TRUNC if offset == 0 else 0)
    try:
        fd = os.open(part, flags, 0o644)
    except OSError as err:
        if err.errno == errno.ELOOP:
            raise DownloadError(f"{part} is a symbolic link; refusing to write through it. Remove it and re-run.") \
                from err
        raise
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise DownloadError(f"{part} is not a regular file; remove it and re-run.")
    os.lseek(fd, offset, os.SEEK_SET)
    os.ftruncate(fd, offset)
    return fd


class _Part:
    """A resumable partial download: ``.<name>.part`` plus ``.<name>.part.json`` (the address, the server's validator
    and the announced size, so a resume asks for the rest of the *same* file only)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.meta_path = path.with_name(path.name + ".json")

    def resume_point(self, url: str) -> tuple[int, dict[str, Any]]:
        """(bytes to keep, recorded meta); 0 when the part cannot be proven to belong to ``url``'s current file."""
        st = _lstat(self.path)
        if st is None or not stat.S_ISREG(st.st_mode) or st.st_size == 0:
            return 0, {}
        try:
            meta = json.loads(self.meta_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return 0, {}
        if not isinstance(meta, dict) or meta.get("url") != url or not meta.get("validator"):
            return 0, {}
        size = meta.get("size")
        if isinstance(size, int) and st.st_size > size:  # over-long: not a prefix of this file
            return 0, {}
        return st.st_size, meta

    def save_meta(self, meta: Mapping[str, Any]) -> None:
        write_text(self.meta_path, json.dumps(dict(meta)))

    def discard(self) -> None:
        for p in (self.path, self.meta_path):
            p.unlink(missing_ok=True)


def _answer_info(headers: Mapping[str, str], total: int | None, full: bool, hub: bool) -> dict[str, Any]:
    """What the server states about the file: size, its own digests (sha256, md5), type and validator."""
    info: dict[str, Any] = {"size": total, "content_type": headers.get("content-type", "")}
    etag = headers.get("etag", "")
    linked = headers.get("x-linked-etag", "").strip('"')
    if _SHA256.fullmatch(linked):  # the Hub's LFS sha256, whatever host serves the bytes
        info["sha256"] = linked
    elif hub and _SHA256.fullmatch(etag.strip('"')):  # the Hub's ETag of an LFS file is its sha256
        info["sha256"] = etag.strip('"')
    if full and (md5 := _content_md5(headers.get("content-md5"))):  # only a whole-file answer's digest is the file's
        info["md5"] = md5
    strong = etag and not etag.startswith("W/")
    info["validator"] = etag if strong else headers.get("last-modified")
    return info


def _is_html(content_type: str, name: str) -> bool:
    return "text/html" in content_type.lower() and not name.lower().endswith((".html", ".htm"))


def _sniff_html(first: bytes) -> bool:
    head = first[:512].lstrip().lower()
    return head.startswith((b"<!doctype html", b"<html", b"<head", b"<body"))


def _get_once(client: Any, url: str, remote: Remote, part: _Part, headers: Mapping[str, str],
              hub: bool) -> dict[str, Any]:
    """One GET of ``url`` into ``part`` (resumed when the server still serves the same file); what it stated."""
    offset, meta = part.resume_point(url)
    request = {**headers, "Accept-Encoding": "identity"}  # the stored bytes, not a transport-compressed copy
    if offset:
        request.update({"Range": f"bytes={offset}-", "If-Range": meta["validator"]})
    with client.stream("GET", url, headers=request) as response:
        code = response.status_code
        if code == 416 and offset:  # the range starts at the end: complete only if the server's size says so
            _, _, total = _content_range(response.headers.get("content-range"))
            if total is not None and total == offset and meta.get("size") in (None, total):
                return {**meta.get("info", {}), "size": total}
            part.discard()
            raise _Transient(f"{url}: the partial download ({offset} bytes) does not match the server's file "
                             f"({total} bytes); starting again")
        if code >= 400:
            raise _status_error(code, url, remote.name)
        if code == 206:
            start, _, total = _content_range(response.headers.get("content-range"))
            if start != offset or (meta.get("size") is not None and total != meta["size"]):
                part.discard()
                raise _Transient(f"{url}: the server answered another range than asked ({start}, not {offset}); "
                                 "starting again")
        else:  # 200: the whole file (the server's file changed, or it ignores ranges)
            offset = 0
            length = response.headers.get("content-length")
            total = int(length) if length and length.isdigit() else None
        info = _answer_info(response.headers, total, full=code == 200, hub=hub)
        if _is_html(info["content_type"], remote.name):
            raise DownloadError(f"{remote.name}: {url} answered with an HTML page (Content-Type "
                                f"{info['content_type']!r}), not the file: an error or login page; check the address "
                                "or the mirror.")
        encoding = response.headers.get("content-encoding", "identity").lower()
        if encoding not in ("identity", "") and not remote.name.lower().endswith((".gz", ".tgz")):
            raise DownloadError(f"{remote.name}: {url} sent it compressed for transport (Content-Encoding "
                                f"{encoding}) although identity was asked; use another mirror.")
        prior_info = meta.get("info", {}) if code == 206 else {}
        info = {**prior_info, **{k: v for k, v in info.items() if v is not None}}
        part.save_meta({"url": url, "validator": info.get("validator"), "size": total, "info": info})
        fd = _open_part(part.path, offset)
        written = offset
        try:
            bar = tqdm(total=total, initial=offset, unit="B", unit_scale=True, desc=remote.name, leave=False,
                       disable=None if not os.environ.get("HF_HUB_DISABLE_PROGRESS_BARS") else True)
            with bar:
                for chunk in response.iter_raw(CHUNK_SIZE):  # raw: a .tar.gz labelled gzip-encoded stays as stored
                    if written == 0 and _sniff_html(chunk):
                        raise DownloadError(f"{remote.name}: {url} answered with an HTML page, not the file: an error "
                                            "or login page; check the address or the mirror.")
                    _write_all(fd, chunk)
                    written += len(chunk)
                    bar.update(len(chunk))
            os.fsync(fd)
        finally:
            os.close(fd)
    if total is not None and written != total:
        raise _Transient(f"{url}: the connection ended after {written} of {total} bytes")
    return info


def _fetch(remote: Remote, part_path: Path, mirror: str | None,
           log: Callable[[str], None] = print) -> tuple[Path, dict[str, Any]]:
    """Download ``remote`` into ``part_path``; returns it and what the server stated (size, digests, Hub commit).

    A partial file survives failures (it is resumed by the next attempt or run); transient failures are retried
    :data:`RETRIES` times with exponential backoff, others fail at once.
    """
    import httpx as http  # imported here: `smarties --help` and the dry run need no HTTP client
    part = _Part(part_path)
    url = mirror_url(remote.url, mirror) if mirror else remote.url
    headers: dict[str, str] = {}
    extra: dict[str, Any] = {}
    hub = bool(remote.hub and not mirror)
    try:
        with http.Client(follow_redirects=True, timeout=http.Timeout(30.0, connect=10.0)) as client:
            for attempt in range(RETRIES + 1):
                try:
                    if hub and not extra:
                        url, headers, extra = _resolve_hub(remote)
                    info = _get_once(client, url, remote, part, headers, hub)
                    break
                except (_Transient, http.HTTPError) as err:
                    net = err if isinstance(err, DownloadError) else _network_error(err, url, remote.name)
                    if not isinstance(net, _Transient):
                        raise net from err
                    if attempt == RETRIES:
                        raise DownloadError(f"{remote.name}: {net} (after {RETRIES + 1} attempts); re-run later (a "
                                            "partial download resumes where it stopped) or use a mirror.") from err
                    wait = BACKOFF * 2**attempt
                    log(f"  {_one_line(net)}; retrying in {wait:g} s")
                    time.sleep(wait)
    except OSError as err:
        raise DownloadError(_describe_os_error(part.path, err, " (the download resumes from what was kept)")) from err
    except DownloadError:
        st = _lstat(part.path)
        if st is None or (stat.S_ISREG(st.st_mode) and st.st_size == 0):
            part.discard()  # nothing to resume from
        elif not stat.S_ISREG(st.st_mode):
            part.meta_path.unlink(missing_ok=True)  # a planted link stays as it was
        raise
    part.meta_path.unlink(missing_ok=True)
    return part.path, {**info, **extra}


def _resolve_hub(remote: Remote) -> tuple[str, dict[str, str], dict[str, Any]]:
    """The address of a Hub dataset file at one commit, the request headers (token) and what the Hub states."""
    from huggingface_hub import get_hf_file_metadata, hf_hub_url
    from huggingface_hub.utils import build_hf_headers

    repo, file, revision = remote.hub  # type: ignore[misc]
    url = hf_hub_url(repo, file, repo_type="dataset", revision=revision)
    try:
        meta = get_hf_file_metadata(url)
    except Exception as err:  # huggingface_hub raises its own errors around the HTTP client's
        raise _network_error(err, url, remote.name) from err
    commit = meta.commit_hash or revision
    extra: dict[str, Any] = {"commit": commit}
    if meta.etag and _SHA256.fullmatch(meta.etag):  # the Hub's ETag of a large (LFS) file is its sha256
        extra["sha256"] = meta.etag
    if meta.size:
        extra["announced_size"] = meta.size
    return hf_hub_url(repo, file, repo_type="dataset", revision=commit), build_hf_headers(), extra


def _verify_fetched(path: Path, remote: Remote, server: Mapping[str, Any], locked: str | None, lock_origin: str,
                    shown_url: str, declared_by: str = "published") -> tuple[str, str]:
    """Check a fresh download against every known fact; returns (sha256, what it was checked against).

    Published checksums and size first, then the server's own statements (Hub sha256, Content-MD5, size), then the
    lock's first-use sha256. On any mismatch nothing is kept.
    """
    wanted = ("sha256",) + (("md5",) if remote.md5 or server.get("md5") else ()) + (("git_blob",) if remote.git_blob else ())
    d = file_digests(path, wanted)
    size = path.stat().st_size
    announced = server.get("announced_size") or server.get("size")
    checks = [
        (remote.size, size, f"size {declared_by}", "size"),
        (remote.sha256, d["sha256"], f"sha256 {declared_by}", "sha256"),
        (remote.md5, d.get("md5"), f"md5 {declared_by}", "md5"),
        (remote.git_blob, d.get("git_blob"), f"git blob id {declared_by}", "git blob id"),
        (server.get("sha256"), d["sha256"], "sha256 stated by the Hub (ETag)", "sha256"),
        (server.get("md5"), d.get("md5"), "md5 stated by the server (Content-MD5)", "md5"),
        (announced, size, "size stated by the server", "size"),
        (locked, d["sha256"], lock_origin, "sha256"),
    ]
    passed = []
    for expected, actual, origin, what in checks:
        if expected is None:
            continue
        if actual != expected:
            path.unlink(missing_ok=True)
            raise DownloadError(
                f"{remote.name}: the file downloaded from {shown_url} has {what} {actual}, expected {expected} "
                f"({origin}); nothing was kept. Check the source or the mirror; if the source really changed, remove "
                "its entry from the lock file and re-run."
            )
        passed.append(origin)
    with open(path, "rb") as fh:
        if _sniff_html(fh.read(512)) and not remote.name.lower().endswith((".html", ".htm")):
            path.unlink(missing_ok=True)
            raise DownloadError(f"{remote.name}: {shown_url} served an HTML page, not the file: an error or login "
                                "page; nothing was kept. Check the address or the mirror.")
    published = [o for o in passed if declared_by in o]
    checked = "; ".join(passed) if published else "; ".join([*passed, "first use: sha256 pinned here"])
    return d["sha256"], checked


def _verify_present(path: Path, expected: str, origin: str, git_blob: bool = False) -> None:
    """Check a file already on disk against a known sha256 (or git blob id) (no network)."""
    d = file_digests(path, ("sha256", "git_blob") if git_blob else ("sha256",))
    actual = d["git_blob"] if git_blob else d["sha256"]
    if actual != expected:
        what = "git blob id" if git_blob else "sha256"
        raise DownloadError(
            f"{path}: {what} is {actual}, expected {expected} ({origin}); delete {path} and re-run "
            "`smarties data download` to fetch it again."
        )


# ------------------------------------------------------------------------------------------------ extraction


def extract(archive: Path, into: Path, member: str | None = None, *, root: Path | None = None) -> None:
    """Unpack ``archive`` (zip or tar, any compression) so that ``into`` holds its ``member`` folder (or all of it).

    Members are unpacked into a hidden folder beside ``into`` (refusing absolute paths, ``..`` and links out of it),
    then renamed into place: a missing ``into`` appears complete or not at all; an existing one gains the new entries
    and keeps its own files. No symbolic link in ``into`` (or below ``root``) is followed.

    Raises:
        DownloadError: not a zip/tar archive, an unsafe member, no ``member`` folder at its top, a damaged archive,
            an archive that would unpack to more than :data:`MAX_EXPANSION` times its size, or a full disk.
    """
    root = root if root is not None else into.parent
    root.mkdir(parents=True, exist_ok=True)
    _make_dirs(root, into.parent)
    _no_links_below(root, into)
    tmp = temp_dir(into.parent, f".{into.name}.extract-")  # the dataset folder gets the umask's mode, not 0700
    try:
        try:
            _unpack(archive, tmp)
        except OSError as err:
            if err.errno in _FULL_DISK:
                raise DownloadError(_describe_os_error(into, err)) from err
            raise
        src = tmp / member if member else tmp
        if not src.is_dir() or src.is_symlink():
            top = sorted(p.name for p in tmp.iterdir())
            raise DownloadError(
                f"{archive}: no folder {member!r} at the top of the archive (found {top}); the archive is not the "
                "declared one: check the source or the mirror."
            )
        _merge(src, into)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _damaged(archive: Path, err: BaseException) -> _Damaged:
    return _Damaged(f"{archive}: the archive is damaged ({_one_line(err)})")


def _unpack(archive: Path, dest: Path) -> None:
    bar = {"desc": f"extracting {archive.name}", "unit": " files", "disable": None, "leave": False}
    limit = max(archive.stat().st_size, 1 << 16) * MAX_EXPANSION
    free = shutil.disk_usage(dest).free  # before unpacking: what the archive may fill in all
    if zipfile.is_zipfile(archive):
        try:
            with zipfile.ZipFile(archive) as zf:
                base = dest.resolve()
                infos = zf.infolist()
                for info in infos:
                    if not (dest / info.filename).resolve().is_relative_to(base):
                        raise DownloadError(f"{archive}: refusing member {info.filename!r}, which points outside the "
                                            "extraction folder; the archive is unsafe: delete it.")
                _check_unpacked_size(archive, sum(i.file_size for i in infos), limit, free, dest)
                for info in tqdm(infos, **bar):  # a member larger than it declares fails its CRC check
                    zf.extract(info, dest)
        except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, ValueError) as err:
            raise _damaged(archive, err) from err
    elif tarfile.is_tarfile(archive):
        if not hasattr(tarfile, "data_filter"):
            raise DownloadError(f"{archive}: safe tar extraction needs Python >= 3.11.4; upgrade Python.")
        try:
            with tarfile.open(archive) as tf:
                total = 0
                for info in tqdm(tf, **bar):  # streamed: one pass over a compressed archive
                    total += info.size
                    _check_unpacked_size(archive, total, limit, free, dest)
                    tf.extract(info, dest, filter="data")
        except tarfile.FilterError as err:
            raise DownloadError(f"{archive}: refusing member {err.tarinfo.name!r} ({err}); the archive is unsafe: "
                                "delete it.") from err
        except (tarfile.TarError, zlib.error, EOFError) as err:
            raise _damaged(archive, err) from err
    else:
        raise _Damaged(f"{archive}: not a readable zip or tar archive (truncated, or another kind of file)")


def _check_unpacked_size(archive: Path, total: int, limit: int, free: int, dest: Path) -> None:
    """Refuse to unpack more than ``limit`` bytes (a zip bomb) or more than the ``free`` space there was."""
    if total > limit:
        raise _Damaged(f"{archive}: unpacks to more than {limit} bytes ({MAX_EXPANSION}x its size; a zip bomb?)")
    if total > free:
        raise DownloadError(f"disk full: {archive} unpacks to {total} bytes but {dest.parent} has {free} free; free "
                            "space and re-run.")


def _merge(src: Path, dest: Path) -> None:
    """Move ``src`` to ``dest`` (one rename when ``dest`` is absent); existing files in ``dest`` are kept.

    Symbolic links in ``dest`` are never followed: one where a folder would be merged is an error.
    """
    st = _lstat(dest)
    if st is None:
        os.replace(src, dest)
        return
    if stat.S_ISLNK(st.st_mode):
        raise DownloadError(f"{dest} is a symbolic link; refusing to extract through it (it could lead outside the "
                            "data root). Remove the link (or replace it with a real folder) and re-run.")
    if not stat.S_ISDIR(st.st_mode):
        return  # an existing file is kept
    for child in src.iterdir():
        target = dest / child.name
        child_st, target_st = os.lstat(child), _lstat(target)
        if target_st is None:
            os.replace(child, target)
        elif stat.S_ISLNK(target_st.st_mode):
            raise DownloadError(f"{target} is a symbolic link; refusing to extract through it (it could lead "
                                "outside the data root). Remove the link and re-run.")
        elif stat.S_ISDIR(child_st.st_mode) and stat.S_ISDIR(target_st.st_mode):
            _merge(child, target)


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
    path, server = _fetch(remote, final.with_name(f".{fname}.part"), run.mirror, run.log)
    published = info.get("sha256") or info.get("git_blob")
    sha, checked = _verify_fetched(path, remote, server, None if published else (locked or {}).get("sha256"),
                                   f"recorded in {run.lock.path}", shown, run.declared)
    os.replace(path, final)
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
        path, server = _fetch(remote, final.with_name(f".{final.name}.part"), run.mirror, run.log)
        sha, checked = _verify_fetched(path, remote, server, (locked or {}).get("sha256"), origin, shown,
                                       run.declared_files)
        os.replace(path, final)
        extra = {"commit": server["commit"]} if "commit" in server else {}
        if "sha256" in server and remote.hub and not run.mirror:
            extra["etag_sha256"] = server["sha256"]
        run.lock.record(rel, url=remote.url, sha256=sha, size=final.stat().st_size, dataset=name,
                        complete=not extract_spec, checked=checked, **extra)
    if extract_spec:
        run.log(f"  extracting {remote.name} into {placed}")
        try:
            extract(final, placed, extract_spec.get("member"), root=run.root)
        except _Damaged as err:  # never pinned: the next run fetches it again
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
        except (DownloadError, OSError) as err:  # one missing list does not stop the data
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
    except (DownloadError, OSError) as err:
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
        except (DownloadError, OSError) as err:  # one missing list does not stop the others
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
        raise DownloadError(_describe_os_error(root, err)) from err
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
