"""A local stand-in for the parts of the Hugging Face Hub API that `huggingface_hub` uses to create a model
repo, commit small files to it, and download them (HF_ENDPOINT points the library at it).

Repos live in memory; every file is committed "regular" (base64 in the commit, no LFS or Xet), and each
commit's id is the SHA-1 of the repo's files. Unknown routes answer 404, logged in `unknown` for the tests.
"""
from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import yaml

_API_REPO = re.compile(r"^/api/models/([^/]+/[^/]+)(?:/(preupload|commit|revision)/([^/?]+))?/?(?:\?.*)?$")
_RESOLVE = re.compile(r"^/([^/]+/[^/]+)/resolve/([^/]+)/(.+?)(?:\?.*)?$")


class Hub:
    """The stand-in's state: `repos[repo_id][path] = bytes`, and the requests it could not answer."""

    def __init__(self):
        self.repos: dict[str, dict[str, bytes]] = {}
        self.unknown: list[str] = []
        self.url = ""

    def commit_id(self, repo_id: str) -> str:
        digest = hashlib.sha1()
        for path, data in sorted(self.repos[repo_id].items()):
            digest.update(path.encode() + b"\0" + data)
        return digest.hexdigest()

    def put(self, repo_id: str, path: str, data: bytes) -> None:
        """Adds a file directly, as another uploader (or a broken one) would have."""
        self.repos.setdefault(repo_id, {})[path] = data


def _handler(hub: Hub):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):  # quiet
            pass

        def _send(self, status: int, body: bytes = b"", headers: dict | None = None, head: bool = False) -> None:
            self.send_response(status)
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if not head:
                self.wfile.write(body)

        def _json(self, value, status: int = 200) -> None:
            self._send(status, json.dumps(value).encode(), {"Content-Type": "application/json"})

        def _missing(self, code: str, head: bool = False) -> None:
            self._send(404, b'{"error": "not found"}', {"X-Error-Code": code, "Content-Type": "application/json"},
                       head)

        def _body(self) -> bytes:
            return self.rfile.read(int(self.headers.get("Content-Length") or 0))

        def do_POST(self):  # noqa: N802 - http.server's naming
            if self.path.startswith("/api/repos/create"):
                payload = json.loads(self._body())
                repo_id = f"{payload.get('organization') or 'user'}/{payload['name']}"
                if repo_id in hub.repos:
                    return self._json({"error": "You already created this model repo", "url": f"{hub.url}/{repo_id}"}, 409)
                hub.repos[repo_id] = {}
                return self._json({"url": f"{hub.url}/{repo_id}", "name": repo_id})
            if self.path.startswith("/api/validate-yaml"):  # the card's metadata: parsed as the Hub would
                content = json.loads(self._body())["content"]
                front = content.split("---\n")[1] if content.startswith("---\n") else ""
                try:
                    yaml.safe_load(front)
                except yaml.YAMLError as error:
                    return self._json({"errors": [{"message": str(error)}]}, 400)
                return self._json({"warnings": []})
            match = _API_REPO.match(self.path)
            if not match or match.group(1) not in hub.repos:
                body = self._body()
                hub.unknown.append(f"POST {self.path} {body[:200]!r}")
                return self._missing("RepoNotFound")
            repo_id, action = match.group(1), match.group(2)
            if action == "preupload":
                files = json.loads(self._body())["files"]
                return self._json({"files": [{"path": f["path"], "uploadMode": "regular", "shouldIgnore": False}
                                             for f in files], "commitOid": hub.commit_id(repo_id)})
            if action == "commit":
                for line in self._body().splitlines():
                    item = json.loads(line)
                    if item["key"] == "file":
                        hub.put(repo_id, item["value"]["path"], base64.b64decode(item["value"]["content"]))
                sha = hub.commit_id(repo_id)
                return self._json({"commitUrl": f"{hub.url}/{repo_id}/commit/{sha}", "commitOid": sha,
                                   "pullRequestUrl": None})
            hub.unknown.append(f"POST {self.path}")
            return self._missing("EntryNotFound")

        def _get(self, head: bool) -> None:
            match = _RESOLVE.match(self.path)
            if match:
                repo_id, _, path = match.groups()
                if repo_id not in hub.repos:
                    return self._missing("RepoNotFound", head)
                data = hub.repos[repo_id].get(path)
                if data is None:
                    return self._missing("EntryNotFound", head)
                etag = '"' + hashlib.sha1(data).hexdigest() + '"'
                return self._send(200, data, {"X-Repo-Commit": hub.commit_id(repo_id), "ETag": etag,
                                              "Content-Type": "application/octet-stream"}, head)
            match = _API_REPO.match(self.path)
            if match and match.group(1) in hub.repos and match.group(2) in (None, "revision"):
                repo_id = match.group(1)
                return self._json({"id": repo_id, "modelId": repo_id, "sha": hub.commit_id(repo_id),
                                   "siblings": [{"rfilename": p} for p in sorted(hub.repos[repo_id])]})
            hub.unknown.append(f"{'HEAD' if head else 'GET'} {self.path}")
            return self._missing("RepoNotFound", head)

        def do_GET(self):  # noqa: N802
            self._get(head=False)

        def do_HEAD(self):  # noqa: N802
            self._get(head=True)

    return Handler


def start() -> tuple[Hub, ThreadingHTTPServer]:
    """-> (hub, server): serving on 127.0.0.1 in a daemon thread; `server.shutdown()` stops it."""
    hub = Hub()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(hub))
    hub.url = f"http://127.0.0.1:{server.server_address[1]}"
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return hub, server
