"""The update step of receive-pack: deploy the pushed commit while the client waits.

It runs after the pack is stored and before the ref moves. For the deploy branch it queues
a deploy job, streams the job's output to the client as `remote:` lines, and lets the ref
move only if the release went live; otherwise the client sees
`! [remote rejected] main -> main (deploy failed: <reason>)` and `git push` exits non-zero.
If the client goes away the job goes on, and the worker moves the ref itself on success.

dulwich's public hooks only send their output after they return, which is too late for
live output, so this overrides `_on_update` (pinned dulwich range, covered by tests).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, ClassVar

import redis
from dulwich.protocol import CAPABILITY_SIDE_BAND_64K, SIDE_BAND_CHANNEL_PROGRESS
from dulwich.server import ReceivePackHandler

from homeport import joblog, jobs, queue
from homeport.config import Settings
from homeport.errors import HomeportError
from homeport.hooks import policy

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PushContext:
    settings: Settings
    redis: redis.Redis


class DeployingReceivePack(ReceivePackHandler):
    """receive-pack that deploys the deploy branch before letting it move."""

    context: ClassVar[PushContext]

    def __init__(self, backend: Any, args: list[Any], proto: Any, **kwargs: Any) -> None:
        super().__init__(backend, args, proto, **kwargs)
        path = args[0].decode() if isinstance(args[0], bytes) else str(args[0])
        self.app = path.strip("/").removesuffix(".git")

    def _receive_max_input_size(self) -> int | None:
        # One cap for every app, from the settings rather than each repo's config.
        return self.context.settings.max_push_bytes

    def _say(self, line: str) -> None:
        if self.has_capability(CAPABILITY_SIDE_BAND_64K):
            self.proto.write_sideband(SIDE_BAND_CHANNEL_PROGRESS, line.encode() + b"\n")

    def _on_update(self, ref_name: bytes, old_sha: bytes, new_sha: bytes) -> bytes | None:
        settings = self.context.settings
        ref, old, new = ref_name.decode(), old_sha.decode(), new_sha.decode()
        refusal = policy.refuse_update(settings.deploy_branch, ref, new)
        if refusal:
            return refusal.encode()
        if not policy.deploys(settings.deploy_branch, ref, new):
            if new != policy.ZERO:
                self._say(
                    f"-----> stored {ref.removeprefix('refs/heads/')}; only pushes to "
                    f"'{settings.deploy_branch}' deploy"
                )
            return None
        try:
            job = jobs.create(
                settings.data_dir,
                app=self.app,
                kind="deploy",
                ref=ref,
                commit=new,
                old_sha=old,
                source="push",
            )
            queue.submit(settings, self.redis, self.app)
        except HomeportError as exc:
            return f"deploy not queued: {exc}".encode()
        return self._stream(job)

    @property
    def redis(self) -> redis.Redis:
        return self.context.redis

    def _stream(self, job: jobs.Job) -> bytes | None:
        settings = self.context.settings
        self._say(f"-----> Queued deploy {job.id} of {job.app}@{job.commit[:12]}")
        path = joblog.log_path(settings.data_dir, job.app, job.id)
        try:
            for line in joblog.follow(
                path, lambda: jobs.is_ended(settings.data_dir, job.id), timeout=settings.job_wait
            ):
                self._say(line)
        except OSError:
            log.info("client left during the deploy of %s; the job goes on", job.id)
            return b"client disconnected; the deploy goes on"
        final = jobs.get(settings.data_dir, job.id)
        if final.status == jobs.SUCCEEDED:
            return None
        # The reason travels on the ref's status line: one line, bounded.
        reason = " ".join(final.reason.split())[:400]
        return f"deploy {final.status}: {reason}".encode()


def handler_for(context: PushContext) -> type[DeployingReceivePack]:
    """A handler class bound to this server's settings and Redis."""
    return type("BoundDeployingReceivePack", (DeployingReceivePack,), {"context": context})
