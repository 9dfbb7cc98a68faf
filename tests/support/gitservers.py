"""Private git servers on loopback: `git http-backend` behind Basic auth, and sshd + git-shell."""

from __future__ import annotations

import base64
import getpass
import hmac
import os
import shutil
import subprocess
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from tests.support.processes import stop
from tests.support.servers import free_port


class _Handler(BaseHTTPRequestHandler):
    server: _GitHTTPServer

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def _authorized(self) -> bool:
        expected = base64.b64encode(
            f"{self.server.username}:{self.server.password}".encode()
        ).decode()
        given = self.headers.get("Authorization", "")
        return hmac.compare_digest(given.encode(), f"Basic {expected}".encode())

    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().strip().split(b";")[0], 16)
                if size == 0:
                    self.rfile.readline()
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            return b"".join(chunks)
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _serve(self) -> None:
        # While git talks to us, its processes are running: none may carry the password.
        self.server.command_lines_seen += _command_lines_holding(self.server.password)
        body = self._body()
        if not self._authorized():
            payload = b"authentication required\n"
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="git"')
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
            return
        path, _, query = self.path.partition("?")
        env = {
            "PATH": os.environ.get("PATH", os.defpath),
            "GIT_PROJECT_ROOT": str(self.server.root),
            "GIT_HTTP_EXPORT_ALL": "1",
            "PATH_INFO": path,
            "QUERY_STRING": query,
            "REQUEST_METHOD": self.command,
            "CONTENT_TYPE": self.headers.get("Content-Type", ""),
            "CONTENT_LENGTH": str(len(body)),
            "REMOTE_USER": self.server.username,
            "REMOTE_ADDR": "127.0.0.1",
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_CONFIG_GLOBAL": os.devnull,
        }
        if self.server.protocol_v2 and self.headers.get("Git-Protocol"):
            env["GIT_PROTOCOL"] = self.headers["Git-Protocol"]
        result = subprocess.run(
            ["git", "http-backend"], input=body, env=env, capture_output=True, check=False
        )
        head, _, payload = result.stdout.partition(b"\r\n\r\n")
        if not _:
            head, _, payload = result.stdout.partition(b"\n\n")
        status = 200
        headers = []
        for line in head.decode("latin-1").splitlines():
            name, _, value = line.partition(":")
            if name.lower() == "status":
                status = int(value.strip().split()[0])
            elif name:
                headers.append((name, value.strip()))
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)
        self.server.bytes_sent += len(payload)


def _command_lines_holding(secret: str) -> list[str]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            line = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if secret.encode() in line:
            found.append(line.replace(b"\0", b" ").decode(errors="replace"))
    return found


class _GitHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    root: Path
    username: str
    password: str
    protocol_v2: bool
    bytes_sent: int
    command_lines_seen: list[str]


@dataclass
class PrivateHttpGit:
    """Repositories under `root` served by `git http-backend`, Basic auth required."""

    root: Path
    username: str
    password: str
    protocol_v2: bool = True
    server: _GitHTTPServer | None = None

    def start(self) -> PrivateHttpGit:
        self.root.mkdir(parents=True, exist_ok=True)
        server = _GitHTTPServer(("127.0.0.1", 0), _Handler)
        server.root = self.root
        server.username = self.username
        server.password = self.password
        server.protocol_v2 = self.protocol_v2
        server.bytes_sent = 0
        server.command_lines_seen = []
        threading.Thread(target=server.serve_forever, daemon=True).start()
        self.server = server
        return self

    @property
    def port(self) -> int:
        assert self.server is not None
        port: int = self.server.server_address[1]
        return port

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.port}/{name}.git"

    def bare(self, name: str) -> Path:
        """The bare repository `name`, created if missing."""
        path = self.root / f"{name}.git"
        if not path.exists():
            subprocess.run(["git", "init", "-q", "--bare", str(path)], check=True)
        return path

    @property
    def bytes_sent(self) -> int:
        assert self.server is not None
        return self.server.bytes_sent

    @property
    def password_on_command_lines(self) -> list[str]:
        """Command lines of processes that held the password while a request was served."""
        assert self.server is not None
        return self.server.command_lines_seen

    def reset_count(self) -> None:
        assert self.server is not None
        self.server.bytes_sent = 0

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()


SSHD = Path("/usr/sbin/sshd")


@dataclass
class SshGit:
    """A separate sshd on 127.0.0.1 whose only key runs git-shell: a provider's deploy key."""

    root: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def user(self) -> str:
        return getpass.getuser()

    def url(self, name: str) -> str:
        return f"ssh://{self.user}@127.0.0.1:{self.port}{self.root}/repos/{name}.git"

    def bare(self, name: str) -> Path:
        path = self.root / "repos" / f"{name}.git"
        if not path.exists():
            subprocess.run(["git", "init", "-q", "--bare", str(path)], check=True)
        return path

    def new_host_key(self) -> None:
        key = self.root / "host_ed25519"
        key.unlink(missing_ok=True)
        Path(f"{key}.pub").unlink(missing_ok=True)
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)

    def authorize(self, public_key: str) -> None:
        """Let `public_key` run git-shell only (no shell, no forwarding): a deploy key."""
        line = f'command="git-shell -c \\"$SSH_ORIGINAL_COMMAND\\"",restrict {public_key}\n'
        with open(self.root / "authorized_keys", "a") as out:
            out.write(line)

    def start(self) -> SshGit:
        self.root.mkdir(parents=True, exist_ok=True)
        if not (self.root / "host_ed25519").exists():
            self.new_host_key()
        (self.root / "authorized_keys").touch()
        (self.root / "authorized_keys").chmod(0o600)
        # Debian's sshd wants its privilege separation directory.
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
        config = self.root / "sshd_config"
        config.write_text(
            f"Port {self.port}\n"
            "ListenAddress 127.0.0.1\n"
            f"HostKey {self.root / 'host_ed25519'}\n"
            f"AuthorizedKeysFile {self.root / 'authorized_keys'}\n"
            f"PidFile {self.root / 'sshd.pid'}\n"
            f"AllowUsers {self.user}\n"
            "PermitRootLogin prohibit-password\n"
            "PubkeyAuthentication yes\n"
            "PasswordAuthentication no\n"
            "KbdInteractiveAuthentication no\n"
            "UsePAM no\n"
            "StrictModes no\n"
            "LogLevel ERROR\n"
        )
        self.process = subprocess.Popen(
            [str(SSHD), "-D", "-e", "-f", str(config)],
            stdout=subprocess.DEVNULL,
            stderr=os.open(self.root / "sshd.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND),
        )
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            probe = subprocess.run(
                ["ssh-keyscan", "-T", "2", "-p", str(self.port), "127.0.0.1"],
                capture_output=True,
                text=True,
            )
            if probe.stdout.strip():
                return self
            if self.process.poll() is not None:
                break
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"sshd did not start: {(self.root / 'sshd.log').read_text()}")

    def stop(self) -> None:
        if self.process is not None:
            stop(self.process, "sshd")


def have_sshd() -> bool:
    return SSHD.exists() and shutil.which("git-shell") is not None


def long_history(
    bare: Path, commits: int, blob_bytes: int, files: dict[str, str] | None = None
) -> list[str]:
    """Write `commits` commits to main of `bare` with git fast-import; their ids, oldest first.

    Each commit rewrites data.bin with `blob_bytes` of random bytes (incompressible, so the
    history really weighs commits times blob_bytes); `files` are in every commit.
    """
    stream = bytearray()
    for n in range(1, commits + 1):
        message = f"commit {n}\n".encode()
        stream += b"commit refs/heads/main\n"
        stream += f"mark :{n}\n".encode()
        stream += f"committer Test <test@example.invalid> {1700000000 + n} +0000\n".encode()
        stream += f"data {len(message)}\n".encode() + message
        if n > 1:
            stream += f"from :{n - 1}\n".encode()
        data = os.urandom(blob_bytes)
        stream += f"M 100644 inline data.bin\ndata {len(data)}\n".encode() + data + b"\n"
        for name, text in (files or {}).items():
            raw = text.encode()
            stream += f"M 100644 inline {name}\ndata {len(raw)}\n".encode() + raw + b"\n"
        stream += b"\n"
    marks = bare / "marks"
    subprocess.run(
        ["git", "--git-dir", str(bare), "fast-import", "--quiet", f"--export-marks={marks}"],
        input=bytes(stream),
        check=True,
    )
    ids = dict(line.split() for line in marks.read_text().splitlines())
    marks.unlink()
    return [ids[f":{n}"] for n in range(1, commits + 1)]
