"""The fetch layer on its own: :func:`fetch.extract_archive` (tar and zip) and :func:`fetch.http_download` against the
loopback server of ``http_server.py`` (``smarties data download``'s behaviour is tested in ``test_download.py``)."""

from __future__ import annotations

import hashlib
import io
import stat
import tarfile
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest
from http_server import Server

from smarties_terratorch import fetch
from smarties_terratorch.fetch import Check, DamagedArchiveError, FetchError, extract_archive, http_download

# ------------------------------------------------------------------------------------------------ archives


def _tar(members: dict[str, bytes | tuple[bytes, int] | str], mode: str = "w:gz") -> bytes:
    """A tar of ``name -> bytes`` files, ``name -> (bytes, declared size)`` and ``name -> "->target"`` symlinks."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode=mode) as tf:
        for name, body in members.items():
            info = tarfile.TarInfo(name)  # built by hand: tar.add() would clean up hostile names
            if isinstance(body, str):
                info.type, info.linkname = tarfile.SYMTYPE, body.removeprefix("->")
                tf.addfile(info)
            else:
                data = body if isinstance(body, bytes) else body[0]
                info.size = len(data)
                tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _zip(members: dict[str, bytes | str]) -> bytes:
    """A zip of ``name -> bytes`` files and ``name -> "->target"`` symbolic links (Unix mode bits)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, body in members.items():
            if isinstance(body, str):
                info = zipfile.ZipInfo(name)
                info.create_system = 3  # Unix: the mode bits in external_attr are read
                info.external_attr = (stat.S_IFLNK | 0o777) << 16
                zf.writestr(info, body.removeprefix("->"))
            else:
                zf.writestr(name, body)
    return buf.getvalue()


PACKERS: dict[str, Callable[[dict], bytes]] = {"tar": _tar, "zip": _zip}


def _archive(tmp_path: Path, kind: str, members: dict) -> Path:
    path = tmp_path / f"a.{'tar.gz' if kind == 'tar' else 'zip'}"
    path.write_bytes(PACKERS[kind](members))
    return path


def _nothing_left(out: Path) -> None:
    """No temporary folder, no partial ``into`` left beside it."""
    assert sorted(p.name for p in out.iterdir()) == []


@pytest.mark.parametrize("kind", ["tar", "zip"])
def test_extract_member_folder_into_place(tmp_path: Path, kind: str) -> None:
    archive = _archive(tmp_path, kind, {"Top/a.txt": b"a", "Top/sub/b.txt": b"b", "README": b"r"})
    into = extract_archive(archive, tmp_path / "out" / "data", member="Top")
    assert into == tmp_path / "out" / "data"
    assert (into / "a.txt").read_bytes() == b"a" and (into / "sub" / "b.txt").read_bytes() == b"b"
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["data"]  # README dropped, no temporary folder


@pytest.mark.parametrize("kind", ["tar", "zip"])
def test_extract_merges_into_an_existing_folder_and_keeps_its_files(tmp_path: Path, kind: str) -> None:
    into = tmp_path / "out"
    (into / "sub").mkdir(parents=True)
    (into / "a.txt").write_bytes(b"mine")
    archive = _archive(tmp_path, kind, {"a.txt": b"theirs", "sub/b.txt": b"b", "c.txt": b"c"})
    extract_archive(archive, into)
    assert (into / "a.txt").read_bytes() == b"mine" and (into / "sub" / "b.txt").read_bytes() == b"b"
    assert (into / "c.txt").read_bytes() == b"c"


@pytest.mark.parametrize("kind", ["tar", "zip"])
@pytest.mark.parametrize("name", ["../evil.txt", "Top/../../evil.txt", "/tmp/evil-abs.txt"])
def test_extract_refuses_traversal(tmp_path: Path, kind: str, name: str) -> None:
    archive = _archive(tmp_path, kind, {"Top/ok.txt": b"ok", name: b"evil"})
    out = tmp_path / "out"
    with pytest.raises(FetchError, match=f"refusing member {name!r}, which points outside.*unsafe"):
        extract_archive(archive, out / "data", member="Top")
    _nothing_left(out)
    assert not (tmp_path / "evil.txt").exists()


@pytest.mark.parametrize("kind", ["tar", "zip"])
def test_extract_refuses_a_symlink_member(tmp_path: Path, kind: str) -> None:
    archive = _archive(tmp_path, kind, {"Top/ok.txt": b"ok", "Top/link": "->/etc/passwd"})
    out = tmp_path / "out"
    with pytest.raises(FetchError, match="refusing member 'Top/link': not a regular file or folder"):
        extract_archive(archive, out / "data", member="Top")
    _nothing_left(out)


def test_extract_refuses_a_device_or_hard_link(tmp_path: Path) -> None:
    for kind in (tarfile.CHRTYPE, tarfile.LNKTYPE):
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tf:
            info = tarfile.TarInfo("Top/odd")
            info.type, info.linkname = kind, "Top/ok.txt"
            tf.addfile(info)
        (tmp_path / "odd.tar").write_bytes(buf.getvalue())
        with pytest.raises(FetchError, match="not a regular file or folder"):
            extract_archive(tmp_path / "odd.tar", tmp_path / "out" / "data")
        _nothing_left(tmp_path / "out")


@pytest.mark.parametrize("kind", ["tar", "zip"])
def test_extract_only_member_refuses_anything_else(tmp_path: Path, kind: str) -> None:
    archive = _archive(tmp_path, kind, {"Top/ok.txt": b"ok", "Other/file.txt": b"x"})
    with pytest.raises(FetchError, match=r"refusing member 'Other/file.txt' \(expected Top/...\)"):
        extract_archive(archive, tmp_path / "out" / "Top", member="Top", only_member=True)
    _nothing_left(tmp_path / "out")


@pytest.mark.parametrize("kind", ["tar", "zip"])
def test_extract_refuses_a_bomb(tmp_path: Path, kind: str) -> None:
    archive = _archive(tmp_path, kind, {"Top/zeros": bytes(2_000_000)})  # compresses to a few kB
    with pytest.raises(DamagedArchiveError, match=r"unpacks to more than \d+ bytes \(10x its size; a zip bomb\?\)"):
        extract_archive(archive, tmp_path / "out" / "data", max_expansion=10)
    _nothing_left(tmp_path / "out")
    assert extract_archive(archive, tmp_path / "out" / "data").joinpath("Top", "zeros").stat().st_size == 2_000_000


@pytest.mark.parametrize("kind", ["tar", "zip"])
def test_extract_damaged_archive_leaves_nothing(tmp_path: Path, kind: str) -> None:
    whole = PACKERS[kind]({f"Top/{i}.bin": hashlib.sha256(bytes([i])).digest() * 512 for i in range(20)})
    archive = tmp_path / f"cut.{'tar.gz' if kind == 'tar' else 'zip'}"
    archive.write_bytes(whole[: len(whole) * 2 // 3])
    with pytest.raises(DamagedArchiveError, match="damaged|not a readable zip or tar archive"):
        extract_archive(archive, tmp_path / "out" / "data", member="Top")
    _nothing_left(tmp_path / "out")


def test_extract_missing_member_folder(tmp_path: Path) -> None:
    archive = _archive(tmp_path, "zip", {"Else/a.txt": b"a"})
    with pytest.raises(FetchError, match=r"no folder 'Top' at the top of the archive \(found \['Else'\]\)"):
        extract_archive(archive, tmp_path / "out" / "data", member="Top")
    _nothing_left(tmp_path / "out")


def test_extract_never_writes_through_a_link(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "data").symlink_to(elsewhere)
    with pytest.raises(FetchError, match="is a symbolic link; refusing to extract through it"):
        extract_archive(_archive(tmp_path, "tar", {"a.txt": b"a"}), tmp_path / "out" / "data")
    assert list(elsewhere.iterdir()) == [] and sorted(p.name for p in (tmp_path / "out").iterdir()) == ["data"]


# ------------------------------------------------------------------------------------------------ HTTP

BODY = bytes(range(256)) * 40
SHA = hashlib.sha256(BODY).hexdigest()


@pytest.fixture
def server() -> Server:
    srv = Server({"/f.bin": BODY, "/page.bin": b"<!DOCTYPE html><html>login</html>"})
    yield srv
    srv.close()


@pytest.fixture(autouse=True)
def _fast(fast_fetch: None) -> None:
    """Every test here: 1 KiB writes, no waits between retries (``fast_fetch``)."""


def test_http_download_verifies_and_renames_into_place(tmp_path: Path, server: Server) -> None:
    dest = tmp_path / "f.bin"
    got = http_download(f"{server.url}/f.bin", dest, expected=[Check("sha256", SHA, "sha256 published")])
    assert dest.read_bytes() == BODY and got["sha256"] == SHA and got["size"] == len(BODY)
    assert got["checked"] == ["sha256 published", "size stated by the server"]
    assert got["server"]["validator"] and sorted(p.name for p in tmp_path.iterdir()) == ["f.bin"]


def test_http_download_mismatch_keeps_nothing(tmp_path: Path, server: Server) -> None:
    dest = tmp_path / "f.bin"
    with pytest.raises(FetchError, match=rf"has md5 {hashlib.md5(BODY).hexdigest()}, expected 0+ \(md5 published\); "
                                         "nothing was kept. Ask the owner."):
        http_download(f"{server.url}/f.bin", dest, expected=[Check("md5", "0" * 32, "md5 published")],
                      on_mismatch="Ask the owner.")
    assert list(tmp_path.iterdir()) == []


def test_http_download_resumes_the_same_file(tmp_path: Path, server: Server) -> None:
    server.cut["/f.bin"] = (3072, None)
    lines: list[str] = []
    http_download(f"{server.url}/f.bin", tmp_path / "f.bin", log=lines.append)
    assert server.gets("/f.bin") == [None, "bytes=3072-"] and (tmp_path / "f.bin").read_bytes() == BODY
    assert len(lines) == 1 and lines[0].startswith(f"{server.url}/f.bin: ") and lines[0].endswith("; retrying in 0 s")


def test_http_download_part_is_kept_for_the_next_call(tmp_path: Path, server: Server,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fetch, "RETRIES", 0)
    server.cut["/f.bin"] = (2048, None)
    with pytest.raises(FetchError, match=r"after 1 attempts\); re-run later"):
        http_download(f"{server.url}/f.bin", tmp_path / "f.bin")
    assert fetch.part_path(tmp_path / "f.bin").stat().st_size == 2048
    http_download(f"{server.url}/f.bin", tmp_path / "f.bin")
    assert server.gets("/f.bin") == [None, "bytes=2048-"] and (tmp_path / "f.bin").read_bytes() == BODY


def test_http_download_refuses_an_html_page(tmp_path: Path, server: Server) -> None:
    with pytest.raises(FetchError, match="answered with an HTML page, not the file"):
        http_download(f"{server.url}/page.bin", tmp_path / "page.bin")
    assert list(tmp_path.iterdir()) == []


def test_http_download_permanent_error_is_not_retried(tmp_path: Path, server: Server) -> None:
    with pytest.raises(FetchError, match=r"download from \S+ failed \(HTTP 404\); check the address or the mirror"):
        http_download(f"{server.url}/missing.bin", tmp_path / "missing.bin")
    assert len(server.gets("/missing.bin")) == 1 and list(tmp_path.iterdir()) == []


def test_verify_file(tmp_path: Path) -> None:
    path = tmp_path / "f.bin"
    path.write_bytes(BODY)
    fetch.verify_file(path, Check("sha256", SHA, "published"), "fetch it again.")
    with pytest.raises(FetchError, match=rf"{path}: size is {len(BODY)}, expected 1 \(published\); fetch it again"):
        fetch.verify_file(path, Check("size", 1, "published"), "fetch it again.")
