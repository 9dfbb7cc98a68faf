"""The BuildKit adapter: the only module that runs `docker buildx`.

Builds go through Docker's buildx plugin, run as a subprocess with the build context streamed
on its stdin as a tar and plain progress read back line by line. Secret values reach the
build through the subprocess's environment (`--secret id=NAME,env=VAR`), never its command
line, and are masked in what it prints.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import IO

from homeport.builder.errors import (
    BuildCancelled,
    BuildError,
    BuildKitMissing,
    EngineUnreachable,
)
from homeport.masking import Masker
from homeport.registry import RegistryError, RegistryUnreachable
from homeport.settings import docker_environ

log = logging.getLogger(__name__)

Output = Callable[[str], None]

# Seconds `docker buildx version` may take before BuildKit counts as unavailable.
_VERSION_TIMEOUT = 20
# Seconds a prune may take; it runs after the image is pushed, so it never fails a push.
_PRUNE_TIMEOUT = 300
# Seconds between the polite stop of a build past its deadline and the kill.
_STOP_GRACE = 3.0
# Seconds between two questions whether a running build is still wanted.
_CANCEL_CHECK = 0.1
# A build step can print a line of any length; longer ones are cut into pieces this long.
_MAX_LINE = 64 * 1024

INSTALL = (
    "install Docker's buildx plugin: `apt-get install docker-buildx` on Debian 13, Ubuntu 24.04 "
    "and later, or `apt-get install docker-buildx-plugin` from Docker's own repository "
    "(download.docker.com/linux/debian or /ubuntu), so that `docker buildx version` answers"
)

_STEP = re.compile(r"^#(\d+) (.*)$")
_EXIT_CODE = re.compile(r"exit code: (\d+)")
_UNREACHABLE = (
    "connection refused",
    "no such host",
    "i/o timeout",
    "dial tcp",
    "no route to host",
    "server gave http response to https client",
    "timeout exceeded",
)


def _environ(docker_host: str | None, extra: Mapping[str, str] = {}) -> dict[str, str]:
    env = docker_environ()
    if docker_host:
        env["DOCKER_HOST"] = docker_host
    # Provenance in the metadata file and attestations are of no use to a single engine.
    env["BUILDX_METADATA_PROVENANCE"] = "disabled"
    env["BUILDX_NO_DEFAULT_ATTESTATIONS"] = "1"
    env.update(extra)
    return env


def require(docker_host: str | None = None) -> str:
    """The buildx version; raises BuildKitMissing saying what to install when there is none."""
    docker = shutil.which("docker", path=docker_environ().get("PATH"))
    if docker is None:
        raise BuildKitMissing(
            f"homeport builds with BuildKit, but the docker CLI is not on PATH; {INSTALL}"
        )
    try:
        done = subprocess.run(
            [docker, "buildx", "version"],
            env=_environ(docker_host),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=_VERSION_TIMEOUT,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        detail = str(exc)
    else:
        if done.returncode == 0:
            return done.stdout.strip()
        said = (done.stderr or done.stdout).strip().splitlines()
        detail = said[-1] if said else f"exit status {done.returncode}"
    raise BuildKitMissing(
        f"homeport builds with BuildKit, but `docker buildx version` failed ({detail}); {INSTALL}"
    )


def prune(keep_bytes: int, docker_host: str | None = None, *, wait: bool = True) -> None:
    """Drop the engine's BuildKit cache beyond keep_bytes, least recently used first.

    With wait=False the prune runs on while the caller goes on (the deploy): it takes a few
    tenths of a second that no push should wait for.
    """
    argv = ["docker", "buildx", "prune", "--force", "--reserved-space", str(keep_bytes)]
    if not wait:
        # Detached through a shell that exits at once: the prune is not our child, so
        # nothing is left to reap when this process moves on or ends.
        argv = ["sh", "-c", '"$@" </dev/null >/dev/null 2>&1 &', "sh", *argv]
    try:
        proc = subprocess.Popen(
            argv,
            env=_environ(docker_host),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
    except OSError as exc:
        log.warning("pruning the build cache: %s", exc)
        return
    try:
        _, err = proc.communicate(timeout=_PRUNE_TIMEOUT)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        log.warning("pruning the build cache took over %d s; stopped it", _PRUNE_TIMEOUT)
        return
    if proc.returncode != 0:
        log.warning("pruning the build cache failed: %s", err.decode("utf-8", "replace").strip())


class _Progress:
    """What plain progress output has said: step titles, the running step, the failure."""

    def __init__(self) -> None:
        self.titles: dict[str, str] = {}
        self.running = ""
        self.failed_step = ""
        self.step_error = ""
        self.final_error = ""

    def take(self, line: str) -> str:
        """Note what the line says; return "push" when it starts the push."""
        if line.startswith("ERROR: "):
            self.final_error = line.removeprefix("ERROR: ")
            return ""
        match = _STEP.match(line)
        if not match:
            return ""
        number, text = match.groups()
        if number not in self.titles:
            self.titles[number] = text
            self.running = text
            return "push" if text.startswith("pushing ") else ""
        if text.startswith("ERROR: ") and not self.step_error:
            self.failed_step = self.titles[number]
            self.step_error = text.removeprefix("ERROR: ")
        return ""


class _Stopper:
    """Stops the whole build (the docker CLI, the plugin, their session) past the deadline,
    or once `cancelled()` says its result is no longer wanted."""

    def __init__(
        self,
        proc: subprocess.Popen[bytes],
        deadline: float,
        cancelled: Callable[[], bool] | None = None,
    ) -> None:
        self._proc = proc
        self._deadline = deadline
        self._cancelled = cancelled
        self._done = threading.Event()
        self.fired = False
        self.cancelled = False
        self._thread = threading.Thread(target=self._run, name="build-stopper", daemon=True)

    def __enter__(self) -> _Stopper:
        self._thread.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *exc: object) -> None:
        self._done.set()
        self._thread.join()
        if exc_type is not None and self._proc.poll() is None:
            # The job was stopped (homeport is stopping): nobody waits for this build, and
            # it runs in a session of its own, so it would outlive the job.
            self._signal(signal.SIGKILL)
            self._proc.wait()

    def _signal(self, sig: int) -> None:
        try:
            os.killpg(self._proc.pid, sig)
        except ProcessLookupError:
            pass

    def _run(self) -> None:
        while True:
            left = self._deadline - time.monotonic()
            step = left if self._cancelled is None else min(left, _CANCEL_CHECK)
            if self._done.wait(max(0.0, step)):
                return
            if self._cancelled is not None and self._cancelled():
                self.cancelled = True
                break
            if time.monotonic() >= self._deadline:
                self.fired = True
                break
        # Closing the session makes the engine cancel the solve and kill the running step.
        # A build nobody wants ends at once: its worker has the newer job to run, and the
        # engine cancels the solve just the same when the session's connection drops.
        if self.cancelled:
            self._signal(signal.SIGKILL)
            return
        self._signal(signal.SIGTERM)
        if not self._done.wait(_STOP_GRACE):
            self._signal(signal.SIGKILL)


def _feed(context: IO[bytes], stdin: IO[bytes]) -> None:
    try:
        shutil.copyfileobj(context, stdin)
    except OSError:
        pass  # the build ended early; its output says why
    finally:
        try:
            stdin.close()
        except OSError:
            pass


def build(
    context: IO[bytes],
    *,
    what: str,
    ref: str,
    dockerfile: str,
    target: str | None,
    buildargs: Mapping[str, str],
    labels: Mapping[str, str],
    secrets: Mapping[str, str],
    memory: int,
    deadline: float,
    output: Output,
    pushing: Callable[[], None],
    nocache: bool = False,
    docker_host: str | None = None,
    cancelled: Callable[[], bool] | None = None,
) -> str:
    """Build the tar context, tag the image `ref` and push it; return the pushed digest.

    `dockerfile` is the Dockerfile's path inside the context; `what` names the app.
    `pushing` is called once, when the push starts. `cancelled` is asked ten times a second;
    once it says yes the build is stopped and BuildCancelled raised.
    """
    masker = Masker(secrets.values())
    secret_env = {f"HOMEPORT_BUILD_SECRET_{name}": value for name, value in secrets.items()}
    with tempfile.TemporaryDirectory(prefix="homeport-build-") as tmp:
        metadata = Path(tmp) / "metadata.json"
        argv = ["docker", "buildx", "build", "--progress=plain", "--file", dockerfile]
        argv += ["--output", f"type=image,name={ref},push=true"]
        argv += ["--metadata-file", str(metadata), "--resource", f"memory={memory}"]
        if target:
            argv += ["--target", target]
        if nocache:
            argv.append("--no-cache")
        for key, value in buildargs.items():
            argv += ["--build-arg", f"{key}={value}"]
        for key, value in labels.items():
            argv += ["--label", f"{key}={value}"]
        for name in secrets:
            argv += ["--secret", f"id={name},env=HOMEPORT_BUILD_SECRET_{name}"]
        argv.append("-")
        progress = _Progress()
        try:
            proc = subprocess.Popen(
                argv,
                env=_environ(docker_host, secret_env),
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        except OSError as exc:
            raise BuildKitMissing(f"cannot run the docker CLI ({exc}); {INSTALL}") from None
        assert proc.stdin is not None and proc.stdout is not None
        feeder = threading.Thread(target=_feed, args=(context, proc.stdin), daemon=True)
        feeder.start()
        with _Stopper(proc, deadline, cancelled) as stopper:
            for raw in iter(lambda: proc.stdout.readline(_MAX_LINE), b""):  # type: ignore[union-attr]
                line = masker(raw.decode("utf-8", "replace").rstrip())
                if not line.strip():
                    continue
                if progress.take(line) == "push":
                    pushing()
                output(line)
            code = proc.wait()
        feeder.join()
        proc.stdout.close()
        if stopper.cancelled:
            raise BuildCancelled(f"the build of {what} was stopped: its image is not wanted")
        if stopper.fired:
            raise BuildError(
                f"the build of {what} took longer than its time limit and was stopped"
                + (f" at {progress.running}" if progress.running else "")
                + "; make the build faster (cache dependencies in their own layer or a cache "
                "mount) or raise HOMEPORT_JOB_TIMEOUT"
            )
        if code != 0:
            if not progress.titles:
                # Nothing was built: most likely no buildx plugin; say what to install.
                require(docker_host)
            raise _failed(what, ref, progress, masker)
        try:
            digest = str(json.loads(metadata.read_text()).get("containerimage.digest", ""))
        except (OSError, ValueError) as exc:
            digest = ""
            log.warning("reading the build's metadata file: %s", exc)
    if not digest.startswith("sha256:"):
        raise RegistryError(
            f"the build of {what} did not report the digest of {ref}; check the registry's "
            "log and push again"
        )
    return digest


def _failed(what: str, ref: str, progress: _Progress, masker: Masker) -> BuildError | RegistryError:
    step, message = progress.failed_step, progress.step_error or progress.final_error
    message = masker(message.strip()) or "no reason given"
    if step.startswith("pushing ") or message.startswith("failed to push"):
        return _push_failed(ref, message)
    code = _EXIT_CODE.search(message)
    if code and step:
        return BuildError(
            f"{step} failed with exit code {code.group(1)} while building {what}; fix the step "
            "and push again"
        )
    lowered = message.lower()
    if "parse error" in lowered or "unknown instruction" in lowered:
        detail = message.rpartition("failed to create LLB definition: ")[2]
        return BuildError(f"the Dockerfile of {what} is invalid: {detail}; fix it and push again")
    if "target stage" in lowered and "could not be found" in lowered:
        return BuildError(
            f"building {what} failed: {message}; fix [build] target in homeport.toml or the "
            "stage's name in the Dockerfile"
        )
    if "cannot connect to the docker daemon" in lowered or "connect: no such file" in lowered:
        return EngineUnreachable(
            f"the Docker engine is unreachable ({message}); start it (e.g. `systemctl start "
            "docker`) or point DOCKER_HOST at a running engine, then push again"
        )
    where = f" at {step}" if step else ""
    return BuildError(
        f"building {what} failed{where}: {message}; fix the Dockerfile and push again"
    )


def _push_failed(ref: str, message: str) -> RegistryError:
    registry = ref.split("/", 1)[0]
    if any(marker in message.lower() for marker in _UNREACHABLE):
        return RegistryUnreachable(
            f"the registry {registry} is unreachable ({message}); start it or set "
            "HOMEPORT_REGISTRY to a running registry, then push again"
        )
    return RegistryError(
        f"the registry {registry} refused {ref}: {message}; check its log, storage space and "
        "access rules, then push again"
    )
