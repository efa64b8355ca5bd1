"""Fixtures for the data tests: a loopback HTTP server (``cifar_root`` is in tests/conftest.py)."""
from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest


class FileServer:
    """Serves ``files`` (name -> bytes) on 127.0.0.1 with HTTP Range support.

    Behaviours per file name, set in ``mode``:
      "ok"             serve normally (honouring Range)
      "truncate_once"  the first request sends half the bytes, then closes the connection
      "truncate"       every request sends at most half of what it promises
      "error"          answer 500
      "ignore_range"   always answer 200 with the whole file, even when asked for a range
    ``requests`` records (path, Range header) of every request.
    """

    def __init__(self):
        self.files: dict[str, bytes] = {}
        self.mode: dict[str, str] = {}
        self.requests: list[tuple[str, str | None]] = []
        self.served_truncated: set[str] = set()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # keep test output clean
                pass

            def do_GET(self):
                name = self.path.lstrip("/").split("/")[-1]
                rng = self.headers.get("Range")
                server.requests.append((self.path, rng))
                mode = server.mode.get(name, "ok")
                if name not in server.files:
                    self.send_error(404, "not found")
                    return
                if mode == "error":
                    self.send_error(500, "internal error")
                    return
                data = server.files[name]
                start = 0
                if rng and mode != "ignore_range":
                    start = int(rng.removeprefix("bytes=").split("-")[0])
                    if start >= len(data):
                        self.send_response(416)
                        self.send_header("Content-Range", f"bytes */{len(data)}")
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                        return
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                else:
                    self.send_response(200)
                body = data[start:]
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Connection", "close")
                self.end_headers()
                truncate = mode == "truncate" or (mode == "truncate_once" and name not in server.served_truncated)
                if truncate:
                    server.served_truncated.add(name)
                    body = body[: len(body) // 2]
                self.wfile.write(body)
                self.wfile.flush()
                self.close_connection = True

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/"

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def file_server():
    server = FileServer()
    yield server
    server.close()


@pytest.fixture
def fast_retries(monkeypatch):
    """No sleeping between download retries."""
    from tinytorch.data import datasets

    monkeypatch.setattr(datasets, "RETRY_WAIT", 0.0)
    return datasets
