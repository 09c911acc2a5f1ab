"""The one way devstack serves HTTP (a threaded server on 127.0.0.1, on a free port), and posts to it."""

from __future__ import annotations

import threading
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback: never via a proxy


def post(url: str, body: bytes, headers: dict, timeout: float = 60) -> tuple[int, bytes]:
    """POST ``body`` to ``url`` (JSON unless ``headers`` say otherwise): the status and the answer's body,
    an error status's too."""
    request = urllib.request.Request(url, data=body, method="POST",
                                     headers={"Content-Type": "application/json", **headers})
    try:
        with _OPENER.open(request, timeout=timeout) as answer:
            return answer.status, answer.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


HOP_BY_HOP = ("connection", "keep-alive", "transfer-encoding", "content-length")  # the server's own to set


def reply(http: BaseHTTPRequestHandler, status: int, headers: dict, data: bytes) -> None:
    """Answer ``status`` with ``data``: JSON unless ``headers`` name another type (any case); hop-by-hop
    headers given are left out (this server sets them)."""
    given = {name.lower(): (name, value) for name, value in headers.items()}
    given.setdefault("content-type", ("Content-Type", "application/json"))
    http.send_response(status)
    for lowered, (name, value) in given.items():
        if lowered not in HOP_BY_HOP:
            http.send_header(name, value)
    http.send_header("Content-Length", str(len(data)))
    http.end_headers()
    http.wfile.write(data)


class LoopbackServer:
    """Hands every request (any method) to ``handle(http)``; subclasses implement it."""

    thread_name = "devstack-http"

    _server: ThreadingHTTPServer | None = None

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def handle(self, http: BaseHTTPRequestHandler) -> None:
        raise NotImplementedError

    def start(self):
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as the real services

            def log_message(self, *args):
                pass

            def do_POST(self):
                owner.handle(self)

            do_GET = do_PUT = do_DELETE = do_PATCH = do_POST

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        # Poll for shutdown every 50 ms: stopping is quick, tests start and stop servers often.
        threading.Thread(target=self._server.serve_forever, args=(0.05,), name=self.thread_name,
                         daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server:
            self._server.shutdown()
            self._server.server_close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
