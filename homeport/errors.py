"""The one error hierarchy; every error a user can meet is a HomeportError.

HomeportError
├── ConfigError            bad HOMEPORT_* setting, or a data dir homeport cannot own (config.py)
├── AppNameError           app name is not a DNS-1123 label (apps.py)
├── ManifestError          broken homeport.toml (manifest.py)
├── SourceError            a webhook's clone URL homeport will not fetch (sources.py)
├── QueueUnavailable       Redis cannot be reached (queue.py)
├── RedisStartError        the embedded Redis did not start (redis_server.py)
├── ReleaseUnavailable     a rollback target whose image or Secret is gone (releases.py)
├── StageError             a deploy stage failed; the job ends failed with its message
│   ├── BuildError         Dockerfile missing or failing, engine unreachable (builder/errors.py)
│   ├── RegistryError      registry unreachable or refusing the push (registry.py)
│   ├── TreeError          a pushed tree entry would escape the context (commits.py)
│   └── RolloutError       the cluster refused or the release never became ready (deployer/)
└── NotFound               an app, job or release that does not exist
"""

from __future__ import annotations


class HomeportError(Exception):
    """Root of homeport's errors; the message is what a user reads."""


class ConfigError(HomeportError):
    """A HOMEPORT_* setting has a value homeport cannot use."""


class StageError(HomeportError):
    """A deploy stage failed; the message becomes the job's reason."""


class NotFound(HomeportError):
    """The app, job or release asked for does not exist."""
