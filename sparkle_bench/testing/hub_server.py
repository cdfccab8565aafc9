"""A stand-in Hugging Face hub on loopback, so the real huggingface_hub download code runs in tests.

It serves repositories from local folders with the part of the hub API that ``snapshot_download``
and ``hf_hub_download`` (huggingface_hub 2.x) use: repo info (``/api/{models,datasets}/{id}[/revision/{rev}]``
with ``sha`` and ``siblings``), the recursive tree listing with sizes and LFS metadata, and
``/{[datasets/]id}/resolve/{rev}/{path}`` answering HEAD with the headers the client checks
(``X-Repo-Commit``, ``ETag``/``X-Linked-Etag``, ``Content-Length``/``X-Linked-Size``) and GET with byte
ranges. No Xet: files carry no Xet hash, so the client takes its plain HTTP path. Unknown repos,
revisions and files answer 404 with the hub's ``X-Error-Code``.

Scripted faults: ``cut[path] = n`` sends the first n bytes of the next full GET of ``path`` and drops
the connection (the client then resumes with a Range request); ``broken`` holds paths whose GETs
answer 500 (the download stops, as when a user interrupts it). Every request is logged.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

LFS_SUFFIXES = (".safetensors", ".bin", ".mp4", ".png", ".pth", ".model")


@dataclass(frozen=True)
class HubFile:
    path: str
    data: bytes
    lfs: bool

    @property
    def etag(self) -> str:
        if self.lfs:
            return hashlib.sha256(self.data).hexdigest()
        return hashlib.sha1(b"blob %d\0" % len(self.data) + self.data).hexdigest()  # git's blob id


@dataclass(frozen=True)
class ServedRepo:
    repo_id: str
    repo_type: str
    files: dict[str, HubFile]

    @property
    def sha(self) -> str:
        digest = hashlib.sha1()
        for f in self.files.values():
            digest.update(f"{f.path}\0{f.etag}\n".encode())
        return digest.hexdigest()


def read_repo(repo_id: str, folder: Path, repo_type: str = "model") -> ServedRepo:
    files = {}
    for path in sorted(p for p in Path(folder).rglob("*") if p.is_file()):
        rel = path.relative_to(folder).as_posix()
        files[rel] = HubFile(rel, path.read_bytes(), rel.endswith(LFS_SUFFIXES))
    return ServedRepo(repo_id, repo_type, files)


class HubServer:
    """``with HubServer() as hub: hub.add("org/name", folder)``; point ``HF_ENDPOINT`` at ``hub.url``."""

    def __init__(self) -> None:
        self.repos: dict[tuple[str, str], ServedRepo] = {}
        self.log: list[dict] = []
        self.cut: dict[str, int] = {}
        self.broken: set[str] = set()
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def do_GET(self):
                server.handle(self, "GET")

            def do_HEAD(self):
                server.handle(self, "HEAD")

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def __enter__(self) -> "HubServer":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def add(self, repo_id: str, folder: Path, repo_type: str = "model") -> ServedRepo:
        repo = read_repo(repo_id, folder, repo_type)
        self.repos[(repo_type, repo_id)] = repo
        return repo

    def downloads(self) -> list[str]:
        """``repo_id/path`` of every file GET so far (HEADs and API calls left out)."""
        return [e["file"] for e in self.log if e["method"] == "GET" and e.get("file")]

    # -- request handling --------------------------------------------------------------------

    def handle(self, handler: BaseHTTPRequestHandler, method: str) -> None:
        url = urlsplit(handler.path)
        path = unquote(url.path)
        entry = {"method": method, "path": path, "range": handler.headers.get("Range")}
        with self._lock:
            self.log.append(entry)
        if match := re.fullmatch(r"/api/(models|datasets)/([^/]+/[^/]+)(?:/revision/(.+))?", path):
            repo, error = self._repo(match[1][:-1], match[2], match[3])
            if error:
                return self._error(handler, *error)
            info = {
                "id": repo.repo_id,
                "sha": repo.sha,
                "private": False,
                "siblings": [{"rfilename": f.path} for f in repo.files.values()],
            }
            return self._json(handler, info)
        if match := re.fullmatch(r"/api/(models|datasets)/([^/]+/[^/]+)/tree/([^/]+)(/.*)?", path):
            repo, error = self._repo(match[1][:-1], match[2], match[3])
            if error:
                return self._error(handler, *error)
            under = (match[4] or "").strip("/")
            return self._json(
                handler,
                [self._tree_entry(f) for f in repo.files.values() if not under or f.path.startswith(under + "/")],
            )
        if match := re.fullmatch(r"/(datasets/)?([^/]+/[^/]+)/resolve/([^/]+)/(.+)", path):
            repo, error = self._repo("dataset" if match[1] else "model", match[2], match[3])
            if error:
                return self._error(handler, *error)
            file = repo.files.get(match[4])
            if file is None:
                return self._error(handler, 404, "EntryNotFound", f"{match[4]} not in {repo.repo_id}", repo.sha)
            entry["file"] = f"{repo.repo_id}/{file.path}"
            return self._file(handler, method, repo, file, entry)
        self._error(handler, 404, "RepoNotFound", f"no route for {path}")

    def _repo(self, repo_type: str, repo_id: str, revision: str | None):
        repo = self.repos.get((repo_type, repo_id))
        if repo is None:
            return None, (404, "RepoNotFound", f"Repository {repo_id} not found")
        if revision not in (None, "main", repo.sha):
            return None, (404, "RevisionNotFound", f"Revision {revision} not found")
        return repo, None

    @staticmethod
    def _tree_entry(file: HubFile) -> dict:
        entry = {
            "type": "file",
            "path": file.path,
            "size": len(file.data),
            "oid": hashlib.sha1(b"blob %d\0" % len(file.data) + file.data).hexdigest(),
        }
        if file.lfs:
            entry["lfs"] = {"oid": file.etag, "size": len(file.data), "pointerSize": 134}
        return entry

    def _file(self, handler: BaseHTTPRequestHandler, method: str, repo: ServedRepo, file: HubFile, entry: dict) -> None:
        data, status, start = file.data, 200, 0
        if method == "GET" and entry["file"] in self.broken:
            return self._error(handler, 500, "InternalError", "scripted failure")
        if match := re.fullmatch(r"bytes=(\d+)-(\d*)", entry["range"] or ""):
            start, end = int(match[1]), int(match[2] or len(data) - 1)
            status, data = 206, data[start : end + 1]
        handler.send_response(status)
        handler.send_header("X-Repo-Commit", repo.sha)
        handler.send_header("ETag", f'"{file.etag}"')
        if file.lfs:
            handler.send_header("X-Linked-Etag", f'"{file.etag}"')
            handler.send_header("X-Linked-Size", str(len(file.data)))
        handler.send_header("Accept-Ranges", "bytes")
        if status == 206:
            handler.send_header("Content-Range", f"bytes {start}-{start + len(data) - 1}/{len(file.data)}")
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        if method == "HEAD":
            return
        with self._lock:
            cut = self.cut.pop(entry["file"], None) if status == 200 else None
        try:
            handler.wfile.write(data if cut is None else data[:cut])
            handler.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            pass
        if cut is not None:
            handler.close_connection = True
            handler.connection.shutdown(2)  # the client sees a body shorter than Content-Length

    @staticmethod
    def _json(handler: BaseHTTPRequestHandler, payload) -> None:
        body = json.dumps(payload).encode()
        handler.send_response(200)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        if handler.command != "HEAD":
            handler.wfile.write(body)

    @staticmethod
    def _error(
        handler: BaseHTTPRequestHandler, status: int, code: str, message: str, commit: str | None = None
    ) -> None:
        body = json.dumps({"error": message}).encode()
        handler.send_response(status)
        handler.send_header("X-Error-Code", code)
        handler.send_header("X-Error-Message", message)
        if commit:
            handler.send_header("X-Repo-Commit", commit)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        if handler.command != "HEAD":
            handler.wfile.write(body)


def use_hub(monkeypatch, url: str, hf_home: Path, offline: bool = False) -> None:
    """Point huggingface_hub (already imported, its settings read at import) and any child process
    at the stand-in ``url`` and a cache under ``hf_home``."""
    from huggingface_hub import constants, hf_api

    cache = str(hf_home / "hub")
    for key, value in {
        "HF_ENDPOINT": url,
        "HF_HOME": str(hf_home),
        "HF_HUB_CACHE": cache,
        "HF_HUB_OFFLINE": "1" if offline else "0",
        "HF_HUB_DISABLE_TELEMETRY": "1",
    }.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setattr(constants, "ENDPOINT", url)
    monkeypatch.setattr(constants, "HUGGINGFACE_CO_URL_TEMPLATE", url + "/{repo_id}/resolve/{revision}/{filename}")
    monkeypatch.setattr(constants, "HF_HOME", str(hf_home))
    monkeypatch.setattr(constants, "HF_HUB_CACHE", cache)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", offline)
    monkeypatch.setattr(hf_api.api, "endpoint", url)  # behind the module-level model_info() etc.
