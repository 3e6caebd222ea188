"""A local HTTP server (127.0.0.1, stdlib ``http.server``) that plays every remote the package talks to.

* Plain files under any path (a mirror serves ``<mirror>/<original host>/<original path>``), with ``Range`` and
  ``If-Range`` requests (resume; the ``ETag`` and ``Last-Modified`` validators follow the content), an optional cut
  of one response (a connection dropped mid-way) and crafted answers (:attr:`Server.crafted`, :attr:`Server.always`:
  another status, body, headers or ``Content-Length``, or a server that ignores ``If-Range``).
* The Hugging Face Hub under ``/hub`` (point ``HF_ENDPOINT`` at ``<url>/hub``, see :func:`use_hub`):
  dataset files (``/hub/datasets/<repo>/resolve/<revision>/<file>``), model files
  (``/hub/<repo>/resolve/<revision>/<file>``) and the model-info API (``/hub/api/models/<repo>``), answering with
  the headers huggingface_hub reads (``X-Repo-Commit``, ``ETag`` = the sha256 of the file, as for LFS files).

Every request is recorded as (method, path, Range), so tests can assert what was (not) asked for.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import sys
import tarfile
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

#: The commit every Hub file is served at (and what the model-info API reports as the repo's current commit).
HUB_COMMIT = "0123456789abcdef0123456789abcdef01234567"
_LAST_MODIFIED = "Mon, 07 Dec 2026 00:00:00 GMT"


class Server:
    """Serves ``files`` (path -> bytes), Hub dataset files ``hub`` and Hub model files ``models``
    (``(repo, file) -> bytes``); records (method, path, Range) of every request."""

    def __init__(
        self,
        files: dict[str, bytes],
        hub: dict[tuple[str, str], bytes] | None = None,
        models: dict[tuple[str, str], bytes] | None = None,
    ) -> None:
        self.files, self.hub, self.models = files, hub or {}, models or {}
        self.requests: list[tuple[str, str, str | None]] = []
        self.cut: dict[str, tuple[int, threading.Event | None]] = {}  # path -> (bytes to send, then wait) once
        self.sent: dict[str, int] = {}
        # crafted answers: path -> a queue of one-shot specs (used in order), or one spec for every answer. A spec
        # may hold "status" (answer with it, empty body), "body" (serve these bytes instead), "headers" (added or
        # replacing), "length" (the Content-Length to announce; the body is sent, then the connection closed) and
        # "if_range": False (honour Range even when If-Range names another version).
        self.crafted: dict[str, list[dict[str, Any]]] = {}
        self.always: dict[str, dict[str, Any]] = {}
        self.closed = False
        self.httpd = _HTTPServer(("127.0.0.1", 0), _Handler)
        self.httpd.owner = self  # type: ignore[attr-defined]
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.hub_url = self.url + "/hub"
        threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True).start()  # quick shutdown

    def lookup(self, path: str) -> tuple[bytes | None, dict[str, str]]:
        dataset = re.fullmatch(r"/hub/datasets/([^/]+/[^/]+)/resolve/([^/]+)/(.+)", path)
        if dataset:
            return self._hub_file(self.hub.get((dataset[1], dataset[3])))
        info = re.fullmatch(r"/hub/api/models/([^/]+/[^/]+)(?:/revision/([^/]+))?", path)
        if info:
            repo = info[1]
            siblings = [{"rfilename": f} for (r, f) in self.models if r == repo]
            if not siblings:
                return None, {}
            body = json.dumps({"id": repo, "modelId": repo, "sha": HUB_COMMIT, "siblings": siblings}).encode()
            return body, {"Content-Type": "application/json"}
        model = re.fullmatch(r"/hub/([^/]+/[^/]+)/resolve/([^/]+)/(.+)", path)
        if model and model[2] in (HUB_COMMIT, "main"):
            return self._hub_file(self.models.get((model[1], model[3])))
        return self.files.get(path), {}

    @staticmethod
    def _hub_file(body: bytes | None) -> tuple[bytes | None, dict[str, str]]:
        if body is None:
            return None, {}
        return body, {"X-Repo-Commit": HUB_COMMIT, "ETag": f'"{hashlib.sha256(body).hexdigest()}"'}

    def gets(self, path: str) -> list[str | None]:
        """Range headers of the GET requests for ``path``."""
        return [rng for method, p, rng in self.requests if method == "GET" and p == path]

    def close(self) -> None:
        for _, event in self.cut.values():
            if event is not None:
                event.set()
        self.closed = True  # a kept-alive connection's handler thread outlives shutdown(): it refuses from now on
        self.httpd.shutdown()
        self.httpd.server_close()


class _HTTPServer(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        # a client that stops reading (a refused answer, Ctrl-C) is expected here, not a server error to print
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: Any) -> None:  # keep the test output clean
        pass

    def do_HEAD(self) -> None:  # noqa: N802
        self._serve(head=True)

    def do_GET(self) -> None:  # noqa: N802
        self._serve(head=False)

    def _serve(self, head: bool) -> None:
        srv: Server = self.server.owner  # type: ignore[attr-defined]
        if srv.closed:  # the "Hub gone": drop the connection without an answer
            self.close_connection = True
            return
        path = urlsplit(self.path).path
        rng = self.headers.get("Range")
        srv.requests.append((self.command, path, rng))
        body, extra = srv.lookup(path)
        queue = srv.crafted.get(path)
        spec = {**srv.always.get(path, {}), **(queue.pop(0) if queue and not head else {})}
        if "status" in spec or body is None:
            self.send_response(spec.get("status", 404))
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        body = spec.get("body", body)
        validators = {"ETag": f'"{hashlib.sha1(body).hexdigest()[:16]}"', "Last-Modified": _LAST_MODIFIED}
        extra = {**validators, **extra, **spec.get("headers", {})}
        start = int(re.fullmatch(r"bytes=(\d+)-", rng)[1]) if rng and not head else 0  # type: ignore[index]
        if_range = self.headers.get("If-Range")
        current = (extra["ETag"], extra["Last-Modified"])
        if start and if_range and spec.get("if_range", True) and if_range not in current:
            start = 0  # another version than the client's part: the whole file (RFC 9110 If-Range)
        if start >= len(body) > 0:
            self.send_response(416)
            self.send_header("Content-Range", f"bytes */{len(body)}")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.send_response(206 if start else 200)
        self.send_header("Content-Length", str(spec.get("length", len(body) - start)))
        self.send_header("Accept-Ranges", "bytes")
        if start:
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        for key, value in extra.items():
            self.send_header(key, value)
        self.end_headers()
        if head:
            return
        payload = body[start:]
        if "length" in spec:  # a lying Content-Length: what there is, then the connection ends
            self.wfile.write(payload)
            self.wfile.flush()
            self.close_connection = True
            return
        if path in srv.cut and not start:
            n, event = srv.cut.pop(path)
            self.wfile.write(payload[:n])
            self.wfile.flush()
            srv.sent[path] = n
            if event is not None:
                event.wait(60)
            self.close_connection = True  # the client sees the body end early
            return
        self.wfile.write(payload)


def use_hub(monkeypatch: pytest.MonkeyPatch, endpoint: str, cache: str | None = None) -> None:
    """Point huggingface_hub (in this process and in subprocesses) at ``endpoint``, online, with its own cache.

    huggingface_hub reads ``HF_ENDPOINT`` once, at import: the derived constants are set here too; the environment
    variables are for subprocesses.
    """
    import huggingface_hub.constants as hf

    template = hf.HUGGINGFACE_CO_URL_TEMPLATE.replace(hf.ENDPOINT, endpoint)
    monkeypatch.setattr(hf, "HUGGINGFACE_CO_URL_TEMPLATE", template)
    monkeypatch.setattr(hf, "ENDPOINT", endpoint)
    monkeypatch.setattr(hf, "HF_HUB_OFFLINE", False)
    monkeypatch.setenv("HF_ENDPOINT", endpoint)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    if cache is not None:
        monkeypatch.setattr(hf, "HF_HUB_CACHE", cache)
        monkeypatch.setenv("HF_HUB_CACHE", cache)


# ------------------------------------------------------------------------------------------------ archives
def zip_folder(folder: Path, arcroot: str) -> bytes:
    """Zip ``folder`` with every member below ``arcroot/`` (how the public zips are packed)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(f"{arcroot}/", "")
        for path in sorted(folder.rglob("*")):
            zf.write(path, f"{arcroot}/{path.relative_to(folder).as_posix()}")
    return buf.getvalue()


def targz_folders(members: dict[str, Path]) -> bytes:
    """tar.gz of folders, each under its archive name (``{arcname: folder}``)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        for arcname, folder in members.items():
            tf.add(folder, arcname=arcname)
    return buf.getvalue()

