"""Notification targets for tests, all on 127.0.0.1: a JSON webhook sink, an endpoint that
speaks ntfy's publish API, and a blackhole that accepts connections and never answers."""

from __future__ import annotations

import hashlib
import hmac
import json
import socket
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.support.servers import WEBHOOK_SECRET


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float = field(default_factory=time.time)

    def json(self) -> Any:
        return json.loads(self.body)


class _Server(ThreadingHTTPServer):
    daemon_threads = True


class Recorder:
    """An HTTP server that records every POST/PUT and answers 200."""

    def __init__(self) -> None:
        self.received: list[Received] = []
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def _take(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length)
                recorder.received.append(
                    Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                )
                answer = recorder.answer(self.path, body)
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            do_POST = _take
            do_PUT = _take

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = _Server(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    def answer(self, path: str, body: bytes) -> bytes:
        return b"{}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class Ntfy(Recorder):
    """ntfy's publish API: POST a JSON {"topic", "message", "title"} to /, or the message
    itself to /<topic> with a Title header; answers with the message as ntfy does."""

    def messages(self) -> list[dict[str, Any]]:
        found = []
        for r in self.received:
            if r.path in ("/", ""):
                data = json.loads(r.body)
            else:
                data = {
                    "topic": r.path.strip("/"),
                    "message": r.body.decode(),
                    "title": r.headers.get("title", r.headers.get("x-title", "")),
                }
            found.append(data)
        return found

    def answer(self, path: str, body: bytes) -> bytes:
        return json.dumps({"id": "x", "time": int(time.time()), "event": "message"}).encode()


class Blackhole:
    """A port that accepts TCP connections and never says a word."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = int(self.sock.getsockname()[1])
        self.held: list[socket.socket] = []
        self._stop = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        self.sock.settimeout(0.2)
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.held.append(conn)

    def close(self) -> None:
        self._stop.set()
        for conn in self.held:
            conn.close()
        self.sock.close()


def verify(received: Received, secret: str = WEBHOOK_SECRET) -> bool:
    """Check X-Homeport-Signature-256 as a recipient would, by docs/notifications.md."""
    stamp = received.headers["x-homeport-timestamp"]
    path = received.path.split("?", 1)[0]
    message = f"{stamp}\nPOST\n{path}\n".encode() + received.body
    expected = "sha256=" + hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()
    fresh = abs(time.time() - int(stamp)) <= 300
    return fresh and hmac.compare_digest(received.headers["x-homeport-signature-256"], expected)
