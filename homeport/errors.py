"""The one error hierarchy; every error a user can meet is a HomeportError.

The second level says what kind of trouble it is, and so how every front end answers it:
the receiver maps it to an HTTP status (receiver/app.py), a push to the rejected-ref reason
(receiver/push/update.py), the CLI to its exit code. Subclasses live beside the code that
raises them.

HomeportError
├── ConfigError            bad HOMEPORT_* setting, or a data dir homeport cannot own (settings.py)
├── InvalidInput           400: the request or the pushed code cannot be used
│   ├── AppNameError       app name is not a DNS-1123 label (names.py)
│   ├── ManifestError      broken homeport.toml (manifest.py)
│   ├── SourceError        a webhook's clone URL homeport will not fetch (git/sources.py)
│   ├── BindingError       a repository an app cannot be bound to (receiver/binding.py)
│   ├── CredentialError    an HTTPS credential homeport cannot store (git/credentials.py)
│   └── SshError           an SSH clone URL or host homeport will not use (git/sshkeys.py)
├── NotFound               404: an app, job or release that does not exist
├── Conflict               409: the request clashes with what exists
│   ├── ReleaseUnavailable a rollback target that cannot be restored (release.py)
│   └── HostKeyChanged     an SSH host offers another key than the pinned one (git/sshkeys.py)
├── TooLarge               413: a body or object over its limit
├── Unavailable            503: a dependency is down; `dependency` names it
│   ├── QueueUnavailable   Redis (lifecycle/queue.py)
│   ├── RegistryUnreachable   the registry (registry.py)
│   ├── EngineUnreachable  the Docker engine (builder/docker_engine.py)
│   └── ClusterUnreachable the Kubernetes API (deployer/kube.py)
├── RedisStartError        the embedded Redis did not start (processes/redis.py)
├── JobRefused             a queued job that is not homeport's runner (processes/worker.py)
└── StageError             a deploy stage failed; the job ends failed with its message
    ├── BuildError         Dockerfile missing or failing, no BuildKit, disk full
    │                      (builder/errors.py)
    ├── RegistryError      registry refusing the push (registry.py)
    ├── TreeError          a pushed tree homeport will not use: names that escape the
    │                      context, too deep, files too big, malformed (git/commits.py)
    ├── GitError           git is missing or cannot read the repository (git/gitcli.py)
    ├── FetchError         a webhook's commit could not be fetched: no or wrong
    │                      credentials, untrusted host key, not found (git/fetch.py)
    └── RolloutError       the cluster refused or the release never became ready (deployer/)

One exception: a pack git index-pack refuses raises PackRefused (git/packs.py), an OSError,
because that is what dulwich's receive-pack turns into the client's `unpack <reason>`.
"""

from __future__ import annotations


class HomeportError(Exception):
    """Root of homeport's errors; the message is what a user reads."""


class ConfigError(HomeportError):
    """A HOMEPORT_* setting has a value homeport cannot use."""


class InvalidInput(HomeportError):
    """What the client sent cannot be used; sending it again will not help."""


class NotFound(HomeportError):
    """The app, job or release asked for does not exist."""


class Conflict(HomeportError):
    """The request is well-formed but clashes with the app's current state."""


class TooLarge(HomeportError):
    """A body or an object is over its limit."""


class Unavailable(HomeportError):
    """A service homeport depends on cannot be reached; trying later may work."""

    dependency = "a dependency"


class StageError(HomeportError):
    """A deploy stage failed; the message becomes the job's reason."""


# What each kind is called where a status code cannot be sent (git's rejected-ref reason).
_KINDS: tuple[tuple[type[HomeportError], int, str], ...] = (
    (Unavailable, 503, "unavailable"),
    (InvalidInput, 400, "refused"),
    (NotFound, 404, "not found"),
    (Conflict, 409, "conflict"),
    (TooLarge, 413, "too large"),
)


def http_status(exc: HomeportError) -> int:
    """The HTTP status a front end answers this error with (400 when no kind says otherwise).

    Unavailable is checked first: an adapter's error may also be a StageError.
    """
    for kind, status, _ in _KINDS:
        if isinstance(exc, kind):
            return status
    return 400


def kind_word(exc: HomeportError) -> str:
    """One word for the kind of error, for a line that has no status code."""
    for kind, _, word in _KINDS:
        if isinstance(exc, kind):
            return word
    return "failed"
