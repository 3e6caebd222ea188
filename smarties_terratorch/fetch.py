"""Fetching, verifying and unpacking files: the one layer under ``smarties data download``, the weights loaders,
the paper-table runner and the example data.

* Hashes are read in one pass per file (:func:`file_digests`); a file's sha256 is remembered per version (path,
  size, modification time) for the life of the process, because the same weights file is often loaded several times
  in a run (:func:`file_sha256`).
* :func:`http_download` is a small resumable, verified GET (httpx, the HTTP client huggingface_hub uses): a hidden
  ``.<name>.part`` file beside the destination, resumed with ``Range`` + ``If-Range`` only while the server still
  serves the same file, transient failures retried :data:`RETRIES` times with backoff, an HTML page never accepted as
  the file, and the file checked against every known fact (the caller's checksums and size, the server's own
  statements) before it is renamed into place. Hugging Face files are resolved to one commit with huggingface_hub's
  public API (honours ``HF_ENDPOINT`` and ``HF_TOKEN``).
* :func:`extract_archive` unpacks a zip or tar archive safely (no absolute paths, no ``..``, no links or devices, at
  most :data:`MAX_EXPANSION` times the archive's size) into a hidden folder, then renames (or merges) it into place.
"""

from __future__ import annotations

import base64
import binascii
import errno
import hashlib
import json
import os
import re
import shutil
import socket
import stat
import tarfile
import time
import zipfile
import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any
from urllib.parse import urlsplit

from tqdm.auto import tqdm

__all__ = [
    "BACKOFF",
    "CHUNK_SIZE",
    "MAX_EXPANSION",
    "RETRIES",
    "Check",
    "DamagedArchiveError",
    "FetchError",
    "describe_os_error",
    "extract_archive",
    "file_digests",
    "file_sha256",
    "http_download",
    "lfs_sha256",
    "lstat_or_none",
    "one_line",
    "part_path",
    "verify_file",
]

#: Bytes read (hashing) or written (downloading) at a time.
CHUNK_SIZE = 1 << 20
#: Attempts per file after a transient failure (dropped connection, timeout, 5xx), and the first wait in seconds
#: (doubled after each attempt).
RETRIES = 3
BACKOFF = 1.0
#: An archive may unpack to at most this many times its own size (real datasets stay below 2x; a zip bomb does not).
MAX_EXPANSION = 100

# The digests a sources table or a weights declaration may name; ``git_blob`` is git's object id of the file.
_ALGORITHMS = ("sha256", "md5", "git_blob")


def file_digests(path: str | Path, algorithms: tuple[str, ...] = ("sha256",)) -> dict[str, str]:
    """Hex digests of ``path`` for each of ``algorithms`` (``sha256``, ``md5``, ``git_blob``), in one read."""
    path = Path(path)
    hashers: dict[str, hashlib._Hash] = {}
    for name in algorithms:
        if name == "sha256":
            hashers[name] = hashlib.sha256()
        elif name == "md5":
            hashers[name] = hashlib.md5(usedforsecurity=False)
        elif name == "git_blob":
            hashers[name] = hashlib.sha1(b"blob %d\0" % path.stat().st_size, usedforsecurity=False)
        else:
            raise ValueError(f"unknown digest {name!r}; expected one of {', '.join(_ALGORITHMS)}")
    if len(hashers) == 1:  # the common case: hashlib's own loop (releases the GIL, no Python-level chunking)
        (name, hasher), = hashers.items()
        with open(path, "rb") as fh:
            return {name: hashlib.file_digest(fh, lambda: hasher).hexdigest()}
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(CHUNK_SIZE), b""):
            for hasher in hashers.values():
                hasher.update(chunk)
    return {name: hasher.hexdigest() for name, hasher in hashers.items()}


_SHA256: dict[tuple[str, int, int], str] = {}


def file_sha256(path: str | Path) -> str:
    """sha256 hex digest of a file, computed once per file version (path, size, modification time) per process."""
    real = Path(path).resolve()
    stat = real.stat()
    key = (str(real), stat.st_size, stat.st_mtime_ns)
    if key not in _SHA256:
        _SHA256[key] = file_digests(real)["sha256"]
    return _SHA256[key]


# ------------------------------------------------------------------------------------------------ errors


class FetchError(RuntimeError):
    """A download, check or extraction failed; the message names the file or URL and the fix."""


class DamagedArchiveError(FetchError):
    """An archive that cannot be unpacked (truncated, bad CRC, over the size limit): fetching it again may help."""


class _Transient(FetchError):
    """A failure worth retrying (dropped connection, timeout, a 5xx answer)."""


_SHA256_HEX = re.compile(r"[0-9a-f]{64}")
_RETRY_STATUS = {408, 425, 429, 500, 502, 503, 504}
_FULL_DISK = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)


def lfs_sha256(etag: str | None) -> str | None:
    """The sha256 in a Hugging Face Hub ETag (quotes stripped), or ``None``: the Hub's ETag of a large (LFS) file is
    its sha256, of a small one a git blob id."""
    value = (etag or "").strip('"')
    return value if _SHA256_HEX.fullmatch(value) else None


def one_line(err: BaseException) -> str:
    """The first line of an error's message (its type name if it has none)."""
    text = str(err).strip().splitlines()
    return text[0] if text else type(err).__name__


def lstat_or_none(path: Path) -> os.stat_result | None:
    """``os.lstat`` (links not followed), or ``None`` when nothing is there."""
    try:
        return os.lstat(path)
    except FileNotFoundError:
        return None


def describe_os_error(path: Path, err: OSError, resume: str = "") -> str:
    """One line naming ``path``, what went wrong and the fix (``resume``: what a re-run keeps, said after it)."""
    if err.errno in _FULL_DISK:
        return (f"disk full: writing {path} failed ({err.strerror or err}); free space on that disk (or raise the "
                f"file-size limit) and re-run{resume}.")
    if err.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        return f"cannot write {path} ({err.strerror or err}); choose a writable --root or fix its permissions."
    return f"{path}: {err.strerror or one_line(err)}; fix that and re-run{resume}."


# ------------------------------------------------------------------------------------------------ HTTP


@dataclass(frozen=True)
class Check:
    """One fact a downloaded file must match.

    Attributes:
        what: ``"sha256"``, ``"md5"``, ``"git_blob"`` (git's object id of the file) or ``"size"`` (bytes).
        value: the expected hex digest or size.
        origin: where the fact comes from, named in the error and in the result (e.g. ``"sha256 published"``).
    """

    what: str
    value: str | int
    origin: str


_WHAT = {"sha256": "sha256", "md5": "md5", "git_blob": "git blob id", "size": "size"}


def part_path(dest: str | Path) -> Path:
    """The hidden partial file :func:`http_download` writes beside ``dest`` (``.<name>.part``)."""
    dest = Path(dest)
    return dest.with_name(f".{dest.name}.part")


def _is_dns_failure(err: BaseException) -> bool:
    seen: BaseException | None = err
    while seen is not None:
        if isinstance(seen, socket.gaierror):
            return True
        seen = seen.__cause__ or seen.__context__
    return "name or service not known" in str(err).lower() or "nodename nor servname" in str(err).lower()


def _network_error(err: Exception, url: str, name: str, where: str) -> FetchError:
    """A client exception as a one-line error: transient (retried) or not."""
    import httpx  # imported here: `smarties --help` and the dry run need no HTTP client

    if _is_dns_failure(err):
        return FetchError(f"{name}: cannot resolve host {urlsplit(url).hostname!r} of {url} (DNS failure); check "
                          f"{where} or the network, then re-run.")
    code = getattr(getattr(err, "response", None), "status_code", None)
    if code is not None:
        return _status_error(code, url, name, where)
    if isinstance(err, (httpx.TransportError, OSError)) and not isinstance(err, (httpx.UnsupportedProtocol,
                                                                                     httpx.ProxyError)):
        return _Transient(f"{url}: {one_line(err)}")
    return FetchError(f"{name}: download from {url} failed ({one_line(err)}); check {where}.")


def _status_error(code: int, url: str, name: str, where: str) -> FetchError:
    if code in _RETRY_STATUS:
        return _Transient(f"{url}: the server answered HTTP {code}")
    return FetchError(f"{name}: download from {url} failed (HTTP {code}); check {where} or your access to it, then "
                      "re-run.")


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
            raise FetchError(f"{part} is a symbolic link; refusing to write through it. Remove it and re-run.") \
                from err
        raise
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise FetchError(f"{part} is not a regular file; remove it and re-run.")
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
        st = lstat_or_none(self.path)
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
        from .io.writer import write_text  # imported here: the hashers need no raster library

        write_text(self.meta_path, json.dumps(dict(meta)))

    def discard(self) -> None:
        for p in (self.path, self.meta_path):
            p.unlink(missing_ok=True)


def _answer_info(headers: Mapping[str, str], total: int | None, full: bool, hub: bool) -> dict[str, Any]:
    """What the server states about the file: size, its own digests (sha256, md5), type and validator."""
    info: dict[str, Any] = {"size": total, "content_type": headers.get("content-type", "")}
    etag = headers.get("etag", "")
    # The Hub's LFS sha256, whatever host serves the bytes (X-Linked-Etag), else the Hub's own ETag.
    if sha256 := lfs_sha256(headers.get("x-linked-etag")) or (lfs_sha256(etag) if hub else None):
        info["sha256"] = sha256
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


def _get_once(client: Any, url: str, name: str, part: _Part, headers: Mapping[str, str], hub: bool,
              where: str) -> dict[str, Any]:
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
            raise _status_error(code, url, name, where)
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
        if _is_html(info["content_type"], name):
            raise FetchError(f"{name}: {url} answered with an HTML page (Content-Type {info['content_type']!r}), not "
                             f"the file: an error or login page; check {where}.")
        encoding = response.headers.get("content-encoding", "identity").lower()
        if encoding not in ("identity", "") and not name.lower().endswith((".gz", ".tgz")):
            raise FetchError(f"{name}: {url} sent it compressed for transport (Content-Encoding {encoding}) although "
                             "identity was asked; use another mirror.")
        prior_info = meta.get("info", {}) if code == 206 else {}
        info = {**prior_info, **{k: v for k, v in info.items() if v is not None}}
        part.save_meta({"url": url, "validator": info.get("validator"), "size": total, "info": info})
        fd = _open_part(part.path, offset)
        written = offset
        try:
            bar = tqdm(total=total, initial=offset, unit="B", unit_scale=True, desc=name, leave=False,
                       disable=None if not os.environ.get("HF_HUB_DISABLE_PROGRESS_BARS") else True)
            with bar:
                for chunk in response.iter_raw(CHUNK_SIZE):  # raw: a .tar.gz labelled gzip-encoded stays as stored
                    if written == 0 and _sniff_html(chunk):
                        raise FetchError(f"{name}: {url} answered with an HTML page, not the file: an error or login "
                                         f"page; check {where}.")
                    _write_all(fd, chunk)
                    written += len(chunk)
                    bar.update(len(chunk))
            os.fsync(fd)
        finally:
            os.close(fd)
    if total is not None and written != total:
        raise _Transient(f"{url}: the connection ended after {written} of {total} bytes")
    return info


def _resolve_hub(hub: tuple[str, str, str], name: str, where: str) -> tuple[str, dict[str, str], dict[str, Any]]:
    """The address of a Hub dataset file at one commit, the request headers (token) and what the Hub states."""
    from huggingface_hub import get_hf_file_metadata, hf_hub_url
    from huggingface_hub.utils import build_hf_headers

    repo, file, revision = hub
    url = hf_hub_url(repo, file, repo_type="dataset", revision=revision)
    try:
        meta = get_hf_file_metadata(url)
    except Exception as err:  # huggingface_hub raises its own errors around the HTTP client's
        raise _network_error(err, url, name, where) from err
    commit = meta.commit_hash or revision
    extra: dict[str, Any] = {"commit": commit}
    if sha256 := lfs_sha256(meta.etag):
        extra["sha256"] = sha256
    if meta.size:
        extra["announced_size"] = meta.size
    return hf_hub_url(repo, file, repo_type="dataset", revision=commit), build_hf_headers(), extra


def _get(url: str, part: _Part, name: str, headers: Mapping[str, str], hub: tuple[str, str, str] | None,
         where: str, log: Callable[[str], None]) -> dict[str, Any]:
    """GET ``url`` (or the Hub file ``hub``) into ``part`` with retries; what the server stated."""
    import httpx  # imported here: `smarties --help` and the dry run need no HTTP client

    extra: dict[str, Any] = {}
    try:
        with httpx.Client(follow_redirects=True, timeout=httpx.Timeout(30.0, connect=10.0)) as client:
            for attempt in range(RETRIES + 1):
                try:
                    if hub and not extra:
                        url, headers, extra = _resolve_hub(hub, name, where)
                    info = _get_once(client, url, name, part, headers, bool(hub), where)
                    break
                except (_Transient, httpx.HTTPError) as err:
                    net = err if isinstance(err, FetchError) else _network_error(err, url, name, where)
                    if not isinstance(net, _Transient):
                        raise net from err
                    if attempt == RETRIES:
                        raise FetchError(f"{name}: {net} (after {RETRIES + 1} attempts); re-run later (a partial "
                                         "download resumes where it stopped) or use a mirror.") from err
                    wait = BACKOFF * 2**attempt
                    log(f"{one_line(net)}; retrying in {wait:g} s")
                    time.sleep(wait)
    except OSError as err:  # the part is kept: the next attempt resumes from it
        raise FetchError(describe_os_error(part.path, err, " (the download resumes from what was kept)")) from err
    except FetchError:
        st = lstat_or_none(part.path)
        if st is None or (stat.S_ISREG(st.st_mode) and st.st_size == 0):
            part.discard()  # nothing to resume from
        elif not stat.S_ISREG(st.st_mode):
            part.meta_path.unlink(missing_ok=True)  # a planted link stays as it was
        raise
    part.meta_path.unlink(missing_ok=True)
    return {**info, **extra}


def _verify(path: Path, name: str, shown: str, checks: Sequence[Check], on_mismatch: str) -> tuple[str, list[str]]:
    """Check ``path`` against ``checks`` in order; (its sha256, the origins that passed). On a mismatch, or an HTML
    page, the file is deleted."""
    wanted = ("sha256",) + tuple(w for w in ("md5", "git_blob") if any(c.what == w for c in checks))
    digests = file_digests(path, wanted)
    digests["size"] = path.stat().st_size
    passed = []
    for check in checks:
        actual = digests[check.what]
        if actual != check.value:
            path.unlink(missing_ok=True)
            raise FetchError(f"{name}: the file downloaded from {shown} has {_WHAT[check.what]} {actual}, expected "
                             f"{check.value} ({check.origin}); nothing was kept. {on_mismatch}")
        passed.append(check.origin)
    with open(path, "rb") as fh:
        if _sniff_html(fh.read(512)) and not name.lower().endswith((".html", ".htm")):
            path.unlink(missing_ok=True)
            raise FetchError(f"{name}: {shown} served an HTML page, not the file: an error or login page; nothing was "
                             "kept. Check the address or the mirror.")
    return digests["sha256"], passed


def verify_file(path: str | Path, check: Check, fix: str) -> None:
    """Check a file already on disk against one known digest or size (no network).

    Raises:
        FetchError: a mismatch, naming ``path``, both values, where the expected one comes from, and ``fix``.
    """
    path = Path(path)
    actual = path.stat().st_size if check.what == "size" else file_digests(path, (check.what,))[check.what]
    if actual != check.value:
        raise FetchError(f"{path}: {_WHAT[check.what]} is {actual}, expected {check.value} ({check.origin}); {fix}")


def http_download(
    url: str,
    dest: str | Path,
    *,
    expected: Sequence[Check] = (),
    recorded: Check | None = None,
    headers: Mapping[str, str] | None = None,
    resume: bool = True,
    hub: tuple[str, str, str] | None = None,
    name: str | None = None,
    where: str = "the address or the mirror",
    on_mismatch: str = "Check the source or the mirror.",
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """GET ``url`` into ``dest``, resumably, and verify it before it is renamed into place.

    The bytes go to ``.<name>.part`` beside ``dest`` (:func:`part_path`); a part left by an interrupted call is
    resumed with ``Range`` + ``If-Range`` only while the server still serves the same file. Transient failures
    (dropped connection, timeout, 5xx) are retried :data:`RETRIES` times with exponential backoff from
    :data:`BACKOFF` seconds; others fail at once. The file is then checked against ``expected``, then against what
    the server stated (the Hub's sha256, ``Content-MD5``, its size), then against ``recorded``; on any mismatch, or
    when it is an HTML page, nothing is kept.

    Args:
        url: the address (with ``hub``: the address named in messages; the file is fetched from the Hub's).
        dest: the file to write.
        expected: published facts, checked first (in order).
        recorded: a sha256 recorded earlier (e.g. at first use), checked last.
        headers: extra request headers.
        resume: resume a partial file left by an earlier call (else start again).
        hub: ``(repo, file, revision)`` of a Hugging Face dataset file, resolved to one commit with
            huggingface_hub's public API (its ``HF_ENDPOINT`` and token apply); its ETag sha256 is checked.
        name: the file's name in messages (default: ``dest``'s name).
        where: what to check when the address fails, in messages (``"check <where> ..."``).
        on_mismatch: the fix named when a check fails.
        log: where retry lines go.

    Returns:
        ``sha256`` and ``size`` of the file, ``checked`` (the origins of the checks it passed, in order) and
        ``server`` (what the server stated: ``size``, ``sha256``, ``md5``, ``content_type``, ``validator``, and for
        a Hub file its ``commit``).

    Raises:
        FetchError: the address fails (named, with the fix), a check fails, an HTML page, a full disk (the part is
            kept for a resume), or a symbolic link where the part goes.
        OSError: another failure to write the part (it is kept).
    """
    dest = Path(dest)
    name = name or dest.name
    part = _Part(part_path(dest))
    if not resume:
        part.discard()
    server = _get(url, part, name, dict(headers or {}), hub, where, log)
    stated = [  # what the server said about the file, checked after the published facts
        Check("sha256", server.get("sha256"), "sha256 stated by the Hub (ETag)"),
        Check("md5", server.get("md5"), "md5 stated by the server (Content-MD5)"),
        Check("size", server.get("announced_size") or server.get("size"), "size stated by the server"),
    ]
    checks = [*expected, *(c for c in stated if c.value), *([recorded] if recorded else [])]
    sha, passed = _verify(part.path, name, url, checks, on_mismatch)
    size = part.path.stat().st_size
    os.replace(part.path, dest)
    return {"sha256": sha, "size": size, "checked": passed, "server": server}


# ------------------------------------------------------------------------------------------------ archives


def extract_archive(
    archive: str | Path,
    into: str | Path,
    *,
    member: str | None = None,
    only_member: bool = False,
    max_expansion: int = MAX_EXPANSION,
) -> Path:
    """Unpack ``archive`` (zip or tar, any compression) so that ``into`` holds its ``member`` folder (or all of it).

    Only plain files and folders are unpacked: absolute paths, ``..``, links and devices are refused (and tar's
    ``"data"`` filter applies). Members go to a hidden folder beside ``into``, which is then renamed into place: a
    missing ``into`` appears complete or not at all; an existing one gains the new entries and keeps its own files.
    No symbolic link in ``into`` is followed. On any failure nothing is left behind.

    Args:
        archive: the zip or tar file.
        into: the folder to fill (its parents are created).
        member: the folder at the top of the archive whose content goes to ``into`` (default: the whole archive).
        only_member: refuse an archive with anything outside ``member``.
        max_expansion: refuse an archive that unpacks to more than this many times its size (a zip bomb).

    Returns:
        ``into``.

    Raises:
        FetchError: an unsafe member, no ``member`` folder at its top, or a full disk.
        DamagedArchiveError: not a zip/tar archive, a damaged one (truncated, bad CRC), or one over the size limit.
    """
    from .io.writer import temp_dir  # imported here: the hashers need no raster library

    archive, into = Path(archive), Path(into)
    into.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_dir(into.parent, f".{into.name}.extract-")  # the folder gets the umask's mode, not 0700
    try:
        try:
            _unpack(archive, tmp, member if only_member else None, max_expansion)
        except OSError as err:
            if err.errno in _FULL_DISK:
                raise FetchError(describe_os_error(into, err)) from err
            raise
        src = tmp / member if member else tmp
        if not src.is_dir() or src.is_symlink():
            top = sorted(p.name for p in tmp.iterdir())
            raise FetchError(f"{archive}: no folder {member!r} at the top of the archive (found {top}); the archive is "
                             "not the declared one: check the source or the mirror.")
        _merge(src, into)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return into


_UNSAFE = "the archive is unsafe: delete it and get it again from its source"


def _check_member(archive: Path, name: str, regular: bool, top: str | None) -> None:
    """Refuse a member that is not a plain file or folder, or that would land outside the folder (or ``top``)."""
    path = PurePosixPath(name.replace("\\", "/"))
    if path.is_absolute() or PureWindowsPath(name).drive or ".." in path.parts:
        raise FetchError(f"{archive}: refusing member {name!r}, which points outside the extraction folder; {_UNSAFE}")
    if not regular:
        raise FetchError(f"{archive}: refusing member {name!r}: not a regular file or folder (a link or a device); "
                         f"{_UNSAFE}")
    if top is not None and (not path.parts or path.parts[0] != top):
        raise FetchError(f"{archive}: refusing member {name!r} (expected {top}/...); {_UNSAFE}")


def _unpack(archive: Path, dest: Path, top: str | None, max_expansion: int) -> None:
    bar = {"desc": f"extracting {archive.name}", "unit": " files", "disable": None, "leave": False}
    limit = max(archive.stat().st_size, 1 << 16) * max_expansion
    free = shutil.disk_usage(dest).free  # before unpacking: what the archive may fill in all
    if zipfile.is_zipfile(archive):
        try:
            with zipfile.ZipFile(archive) as zf:
                infos = zf.infolist()
                for info in infos:
                    # Unix mode bits (a link, a device) only mean something in a zip written on Unix
                    kind = stat.S_IFMT(info.external_attr >> 16) if info.create_system == 3 else 0
                    _check_member(archive, info.filename, kind in (0, stat.S_IFREG, stat.S_IFDIR), top)
                _check_unpacked_size(archive, sum(i.file_size for i in infos), limit, max_expansion, free, dest)
                for info in tqdm(infos, **bar):  # a member larger than it declares fails its CRC check
                    zf.extract(info, dest)
        except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, ValueError) as err:
            raise DamagedArchiveError(f"{archive}: the archive is damaged ({one_line(err)})") from err
    elif tarfile.is_tarfile(archive):
        # The 'data' filter (Python >= 3.11.4) re-checks what _check_member does and drops odd permissions.
        safe = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
        try:
            with tarfile.open(archive) as tf:
                total = 0
                for info in tqdm(tf, **bar):  # streamed: one pass over a compressed archive
                    _check_member(archive, info.name, info.isfile() or info.isdir(), top)
                    total += info.size
                    _check_unpacked_size(archive, total, limit, max_expansion, free, dest)
                    tf.extract(info, dest, **safe)
        except tarfile.FilterError as err:
            raise FetchError(f"{archive}: refusing member {err.tarinfo.name!r} ({err}); {_UNSAFE}") from err
        except (tarfile.TarError, zlib.error, EOFError) as err:
            raise DamagedArchiveError(f"{archive}: the archive is damaged ({one_line(err)})") from err
    else:
        raise DamagedArchiveError(f"{archive}: not a readable zip or tar archive (truncated, or another kind of file)")


def _check_unpacked_size(archive: Path, total: int, limit: int, max_expansion: int, free: int, dest: Path) -> None:
    """Refuse to unpack more than ``limit`` bytes (a zip bomb) or more than the ``free`` space there was."""
    if total > limit:
        raise DamagedArchiveError(f"{archive}: unpacks to more than {limit} bytes ({max_expansion}x its size; a zip "
                                  "bomb?)")
    if total > free:
        raise FetchError(f"disk full: {archive} unpacks to {total} bytes but {dest.parent} has {free} free; free "
                         "space and re-run.")


def _merge(src: Path, dest: Path) -> None:
    """Move ``src`` to ``dest`` (one rename when ``dest`` is absent); existing files in ``dest`` are kept.

    Symbolic links in ``dest`` are never followed: one where a folder would be merged is an error.
    """
    st = lstat_or_none(dest)
    if st is None:
        try:
            os.replace(src, dest)
            return
        except OSError:  # another process renamed its own copy into place first: merge into it
            if (st := lstat_or_none(dest)) is None:
                raise
    if stat.S_ISLNK(st.st_mode):
        raise FetchError(f"{dest} is a symbolic link; refusing to extract through it (it could lead outside the "
                         "data root). Remove the link (or replace it with a real folder) and re-run.")
    if not stat.S_ISDIR(st.st_mode):
        return  # an existing file is kept
    for child in src.iterdir():
        target = dest / child.name
        child_st, target_st = os.lstat(child), lstat_or_none(target)
        if target_st is None:
            os.replace(child, target)
        elif stat.S_ISLNK(target_st.st_mode):
            raise FetchError(f"{target} is a symbolic link; refusing to extract through it (it could lead outside "
                             "the data root). Remove the link and re-run.")
        elif stat.S_ISDIR(child_st.st_mode) and stat.S_ISDIR(target_st.st_mode):
            _merge(child, target)
