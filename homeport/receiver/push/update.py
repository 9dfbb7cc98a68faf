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
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import redis
from dulwich.protocol import CAPABILITY_SIDE_BAND_64K, SIDE_BAND_CHANNEL_PROGRESS
from dulwich.server import ReceivePackHandler

from homeport import apps, lifecycle
from homeport.errors import HomeportError, kind_word
from homeport.git.commits import CommitTree
from homeport.receiver.push import policy
from homeport.records import joblog, jobs
from homeport.settings import Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PushContext:
    settings: Settings
    redis: redis.Redis
    # Whether the receiver is stopping: a waiting push then stops waiting.
    stopping: Callable[[], bool]


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
        blocked = self._check_commit(new)
        if blocked:
            return blocked
        try:
            submitted = lifecycle.submit_deploy(
                settings,
                self.redis,
                app=self.app,
                ref=ref,
                commit=new,
                old_sha=old,
                source="push",
            )
        except HomeportError as exc:
            # The same kinds of error as the API's status codes, as one line on the ref.
            return f"deploy not queued ({kind_word(exc)}): {one_line(str(exc))}".encode()
        assert isinstance(submitted, lifecycle.Submitted)  # a push has no dedup keys
        return self._stream(submitted.job)

    def _check_commit(self, commit: str) -> bytes | None:
        """Refuse, before any job, what the build would refuse: big files, broken trees.

        Kinds and sizes come from object headers, so this reads no file's contents.
        """
        settings = self.context.settings
        path = apps.repo_path(settings.data_dir, self.app)
        try:
            with CommitTree(path, commit, max_blob_bytes=settings.max_blob_bytes) as tree:
                for _entry in tree.walk():
                    pass
        except HomeportError as exc:
            reason = one_line(str(exc))
            self._say(f"-----> refused {commit[:12]}: {reason}")
            return reason.encode()
        return None

    @property
    def redis(self) -> redis.Redis:
        return self.context.redis

    def _stream(self, job: jobs.Job) -> bytes | None:
        settings = self.context.settings
        self._say(f"-----> Queued deploy {job.id} of {job.app}@{job.commit[:12]}")
        path = joblog.log_path(settings.data_dir, job.app, job.id)
        try:
            for line in joblog.follow(
                path,
                lambda: jobs.is_ended(settings.data_dir, job.id),
                timeout=settings.job_wait,
                stopping=self.context.stopping,
            ):
                self._say(line)
        except OSError:
            log.info("client left during the deploy of %s; the job goes on", job.id)
            return b"client disconnected; the deploy goes on"
        final = jobs.get(settings.data_dir, job.id)
        if final.status == jobs.SUCCEEDED:
            return None
        if not final.ended and self.context.stopping():
            return (
                f"homeport stopped while the deploy was {final.status}; it goes on wherever "
                f"its worker runs: follow it with `homeport jobs {job.app} {job.id} -f`"
            ).encode()
        if not final.ended:
            return (
                f"deploy still {final.status} after {settings.job_wait:.0f} s; it goes on: "
                f"follow it with `homeport jobs {job.app} {job.id} -f`"
            ).encode()
        return f"deploy {final.status}: {one_line(final.reason)}".encode()


def one_line(text: str) -> str:
    """A reason as it travels on the ref's status line: one line, bounded."""
    return " ".join(text.split())[:400]


def handler_for(context: PushContext) -> type[DeployingReceivePack]:
    """A handler class bound to this server's settings and Redis."""
    return type("BoundDeployingReceivePack", (DeployingReceivePack,), {"context": context})
