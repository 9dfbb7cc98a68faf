"""homeport.toml parsing and validation."""

from __future__ import annotations

import json
import math
import string
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from homeport.deployer import cron, objects, processes
from homeport.errors import HomeportError
from homeport.manifest import Manifest, ManifestError, parse_manifest, read_manifest
from homeport.spec import CronSpec, ProcessSpec, RunSpec
from tests.conftest import GitApp

FULL = """
[build]
dockerfile = "Dockerfile"
args = { VERSION = "1" }
[run]
port = 8080
replicas = 1
memory = "256Mi"
cpu = "500m"
[healthcheck]
path = "/healthz"
timeout = 60
[env]
GREETING = "hello"
[ingress]
host = "blog.home.lan"
"""


def test_empty_file_gives_defaults() -> None:
    """Every key is optional: an empty manifest is the defaults."""
    manifest = parse_manifest("")
    assert manifest == Manifest()
    assert manifest.build.dockerfile == "Dockerfile"
    assert dict(manifest.build.args) == {}
    assert (manifest.run.port, manifest.run.replicas) == (8080, 1)
    assert (manifest.run.memory, manifest.run.cpu) == (None, None)
    assert (manifest.healthcheck.path, manifest.healthcheck.timeout) == (None, 60)
    assert dict(manifest.env) == {}
    assert manifest.ingress.host is None


def test_full_file_is_read() -> None:
    """Every documented key is read into the typed manifest."""
    manifest = parse_manifest(FULL)
    assert dict(manifest.build.args) == {"VERSION": "1"}
    assert (manifest.run.memory, manifest.run.cpu) == ("256Mi", "500m")
    assert manifest.healthcheck.path == "/healthz"
    assert dict(manifest.env) == {"GREETING": "hello"}
    assert manifest.ingress.host == "blog.home.lan"


def test_manifest_is_frozen() -> None:
    """A manifest cannot be changed after parsing, nor its tables."""
    manifest = parse_manifest(FULL)
    with pytest.raises(AttributeError):
        manifest.run.port = 1  # type: ignore[misc]
    with pytest.raises(TypeError):
        manifest.env["X"] = "y"  # type: ignore[index]


def test_numbers_in_env_and_args_become_strings() -> None:
    """Environment values and build args written as numbers or booleans are kept as text."""
    manifest = parse_manifest("[env]\nPORT = 3000\nDEBUG = true\n[build]\nargs = { N = 2 }")
    assert dict(manifest.env) == {"PORT": "3000", "DEBUG": "true"}
    assert dict(manifest.build.args) == {"N": "2"}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "[run]\nport = 99999",
            "homeport.toml: run.port = 99999 is not allowed: use a port between 1 and 65535",
        ),
        (
            '[run]\nport = "80"',
            'run.port = "80" is not allowed: use a number, not a string: a port between 1',
        ),
        ("[run]\nport = true", "run.port = true is not allowed: use a port"),
        ("[run]\nreplicas = -1", "run.replicas = -1 is not allowed: use a number of replicas"),
        ('[run]\nmemory = "lots"', 'run.memory = "lots" is not allowed: use a Kubernetes quantity'),
        ("[run]\nmemory = 256", "run.memory = 256 is not allowed: use a Kubernetes quantity"),
        ('[run]\ncpu = "fast"', 'run.cpu = "fast" is not allowed: use a Kubernetes quantity'),
        ('[run]\ncpu = "0m"', 'run.cpu = "0m" is not allowed: use a Kubernetes quantity'),
        ('[healthcheck]\npath = "healthz"', 'healthcheck.path = "healthz" is not allowed: use an'),
        ("[healthcheck]\ntimeout = 0", "healthcheck.timeout = 0 is not allowed: use a number of"),
        ('[build]\ndockerfile = "../Dockerfile"', 'build.dockerfile = "../Dockerfile" is not al'),
        ('[build]\ndockerfile = "/../Dockerfile"', 'build.dockerfile = "/../Dockerfile" is not'),
        ('[build]\ncontext = "../other"', 'build.context = "../other" is not allowed: use a dir'),
        ('[build]\ncontext = "/srv/app"', 'build.context = "/srv/app" is not allowed: use a dir'),
        ('[build]\ncontext = "a/../../b"', 'build.context = "a/../../b" is not allowed'),
        ('[build]\ntarget = "run time"', 'build.target = "run time" is not allowed: use the name'),
        (
            '[build]\nsecrets = "NPM_TOKEN"',
            'build.secrets = "NPM_TOKEN" is not allowed: use a list',
        ),
        ('[build]\nsecrets = ["NPM-TOKEN"]', 'build.secrets = "NPM-TOKEN" is not allowed: names'),
        ('[build]\nargs = "x"', 'build.args = "x" is not allowed: use a table of build arg'),
        ("[build]\nargs = { 1X = 'a' }", "build.args.1X is not allowed: names use letters"),
        ("[env]\nX = [1]", "env.X = [...] is not allowed: use a string"),
        ('[env]\n"A-B" = "x"', "env.A-B is not allowed: names use letters, digits"),
        ('[ingress]\nhost = "Blog.Home"', 'ingress.host = "Blog.Home" is not allowed: use a lo'),
        ('[ingress]\nhost = "a..b"', 'ingress.host = "a..b" is not allowed'),
        # Every check matches the whole value: a trailing newline is not let through.
        ('[ingress]\nhost = "blog.lan\\n"', 'ingress.host = "blog.lan\\n" is not allowed'),
        ('[run]\nmemory = "256Mi\\n"', 'run.memory = "256Mi\\n" is not allowed'),
        ('[run]\ncpu = "1\\n"', 'run.cpu = "1\\n" is not allowed'),
        ('[healthcheck]\npath = "/h\\n"', 'healthcheck.path = "/h\\n" is not allowed'),
        ('[env]\n"A\\n" = "x"', "is not allowed: names use letters, digits"),
        ("run = 5", "homeport.toml: run = 5 is not allowed: use a table [run]"),
        ("[deploy]\nx = 1", "homeport.toml: unknown table [deploy]; use [build], [run]"),
        ("[run]\nprot = 80", "homeport.toml: unknown key run.prot; [run] takes port, replicas"),
        ("top = 1", "homeport.toml: top is a key outside any table; keys go in a table ([b"),
        ("port = 3000", "homeport.toml: port is a key outside any table; keys go in a table"),
        ("port = 3000", "; did you mean [run] port = ...?"),
        ('[run]\nport = "3000"', 'run.port = "3000" is not allowed: use a number, not a string'),
    ],
)
def test_invalid_values_name_key_value_and_what_is_allowed(text: str, message: str) -> None:
    """Each refusal names the key, the value and what is allowed."""
    with pytest.raises(ManifestError) as failure:
        parse_manifest(text)
    assert message in str(failure.value)


def test_syntax_error_names_the_line() -> None:
    """A TOML syntax error says so and names the line."""
    with pytest.raises(ManifestError, match=r"not valid TOML: .*line 3"):
        parse_manifest("[run]\nport = 80\nreplicas = = 2\n")
    with pytest.raises(ManifestError, match=r"not valid TOML: .*line 2"):
        parse_manifest("[run]\nport =")


def test_manifest_error_is_a_homeport_error() -> None:
    """ManifestError belongs to the one error hierarchy."""
    assert issubclass(ManifestError, HomeportError)


def test_oversized_or_deep_files_are_refused() -> None:
    """A huge file or absurd nesting is a ManifestError, not a crash."""
    with pytest.raises(ManifestError, match="larger than"):
        parse_manifest("# " + "x" * 100_000)
    with pytest.raises(ManifestError):
        parse_manifest("a = " + "[" * 5000 + "]" * 5000)


def test_read_manifest_from_a_commit(git_app: GitApp) -> None:
    """The file is read from the commit's tree; a commit without one gets the defaults."""
    first = git_app.commit({"README": "x\n"})
    second = git_app.commit({"homeport.toml": "[run]\nport = 3000\n"})
    third = git_app.commit({"homeport.toml": "[run]\nport = 0\n"})
    assert read_manifest(git_app.bare, first) == Manifest()
    assert read_manifest(git_app.bare, second).run.port == 3000
    with pytest.raises(ManifestError, match=r"run\.port = 0"):
        read_manifest(git_app.bare, third)


def test_read_manifest_refuses_non_utf8(git_app: GitApp, tmp_path: Path) -> None:
    """A manifest that is not UTF-8 says so."""
    commit = git_app.commit({"homeport.toml": b"\xff\xfe[run]"})
    with pytest.raises(ManifestError, match="not UTF-8"):
        read_manifest(git_app.bare, commit)


def _toml_float(value: float) -> str:
    if math.isnan(value):
        return "nan"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return repr(value)


_keys = st.sampled_from(
    [
        "build",
        "run",
        "healthcheck",
        "env",
        "ingress",
        "dockerfile",
        "args",
        "port",
        "replicas",
        "memory",
        "cpu",
        "path",
        "timeout",
        "host",
        "GREETING",
        "x",
        "1a",
        "a-b",
    ]
)
_scalars = st.one_of(
    st.integers(min_value=-(2**63), max_value=2**63 - 1).map(str),
    st.floats().map(_toml_float),
    st.booleans().map(lambda b: "true" if b else "false"),
    st.text(max_size=20).map(json.dumps),
    st.just("1979-05-27T07:32:00Z"),
    st.just("[1, 2]"),
    st.just('{ A = "b" }'),
)


@st.composite
def _documents(draw: st.DrawFn) -> str:
    lines: list[str] = []
    for _ in range(draw(st.integers(0, 8))):
        if draw(st.booleans()):
            lines.append(f"[{draw(_keys)}]")
        lines.append(f"{draw(_keys)} = {draw(_scalars)}")
    return "\n".join(lines)


@settings(max_examples=300, deadline=None)
@given(st.one_of(_documents(), st.text(alphabet=string.printable + '[]="{}é\0', max_size=200)))
def test_any_text_raises_only_manifest_error(text: str) -> None:
    """Whatever the text, parsing raises ManifestError or gives a manifest that deploys."""
    try:
        manifest = parse_manifest(text)
    except ManifestError:
        return
    spec = manifest.run_spec()
    objects.deployment("blog", 1, "r/blog@sha256:" + "a" * 64, spec, "blog-v1")
    for name in spec.processes:
        if not spec.processes[name].volumes:
            processes.deployment("blog", 1, "r/blog@sha256:" + "a" * 64, spec, name, "blog-v1")
    for name in spec.cron:
        cron.cronjob("blog", 1, "r/blog@sha256:" + "a" * 64, spec, name, "blog-v1")
    assert RunSpec.from_dict(json.loads(json.dumps(spec.to_dict()))) == spec


def test_every_accepted_manifest_makes_a_deployable_run_spec() -> None:
    """Limits live in the manifest alone: values at its limits become a run spec and objects."""
    manifest = parse_manifest(
        '[run]\nport = 65535\nreplicas = 100\nmemory = "1Gi"\ncpu = 2\n'
        '[healthcheck]\npath = "/up"\ntimeout = 3600\n[env]\nA = 1\n[ingress]\nhost = "a.b"\n'
    )
    spec = manifest.run_spec()
    assert (spec.replicas, spec.port, spec.health_timeout, spec.cpu) == (100, 65535, 3600, "2")
    deployment = objects.deployment("blog", 1, "r/blog@sha256:" + "a" * 64, spec, "blog-v1")
    assert deployment["spec"]["replicas"] == 100
    assert parse_manifest("[run]\nreplicas = 75").run_spec().replicas == 75


def test_build_context_target_and_secrets() -> None:
    """[build] context, target and secrets parse; dockerfile is relative to the context
    unless it starts with "/" at the repository root."""
    manifest = parse_manifest(
        '[build]\ncontext = "services/web/"\ntarget = "runtime"\n'
        'secrets = ["NPM_TOKEN", "NPM_TOKEN", "GH_TOKEN"]\n'
    )
    assert manifest.build.context == "services/web"
    assert manifest.build.target == "runtime"
    assert manifest.build.secrets == ("NPM_TOKEN", "GH_TOKEN")
    assert manifest.build.dockerfile_path == "services/web/Dockerfile"
    rooted = parse_manifest('[build]\ncontext = "services/web"\ndockerfile = "/docker/web"\n')
    assert rooted.build.dockerfile_path == "docker/web"
    assert parse_manifest("").build.dockerfile_path == "Dockerfile"


PARTS = """
[volumes.data]
path = "/data"
size = "1Gi"
[processes.worker]
command = ["/app/worker", "--queue", "mail"]
replicas = 2
memory = "128Mi"
volumes = ["data", "data"]
[processes.mailer]
command = ["/app/mailer"]
[cron.backup]
schedule = "0 3 * * *"
command = ["/app/backup"]
timeout = 600
[cron.tick]
schedule = "@hourly"
command = ["sh", "-c", "echo tick"]
"""


def test_processes_and_cron_are_read_into_the_run_spec() -> None:
    """[processes.NAME] and [cron.NAME] become the run spec's processes and cron, and survive
    the release record's JSON."""
    spec = parse_manifest(PARTS).run_spec()
    assert spec.processes == {
        "worker": ProcessSpec(
            command=("/app/worker", "--queue", "mail"),
            replicas=2,
            memory="128Mi",
            volumes=("data",),
        ),
        "mailer": ProcessSpec(command=("/app/mailer",)),
    }
    assert spec.cron == {
        "backup": CronSpec(schedule="0 3 * * *", command=("/app/backup",), timeout=600),
        "tick": CronSpec(schedule="@hourly", command=("sh", "-c", "echo tick")),
    }
    assert RunSpec.from_dict(json.loads(json.dumps(spec.to_dict()))) == spec
    assert RunSpec.from_dict({"port": 80}).processes == {}  # releases from before processes


def test_volumes_are_read_into_the_run_spec() -> None:
    """[volumes.NAME] tables become the release's volumes, in order."""
    manifest = parse_manifest(
        '[volumes.data]\npath = "/var/lib/blog"\nsize = "1Gi"\n'
        '[volumes.uploads]\npath = "/srv/uploads"\nsize = "500Mi"\n'
    )
    assert [(v.name, v.path, v.size) for v in manifest.run_spec().volumes] == [
        ("data", "/var/lib/blog", "1Gi"),
        ("uploads", "/srv/uploads", "500Mi"),
    ]
    assert parse_manifest("").run_spec().volumes == ()


def test_release_command_is_carried_in_the_run_spec() -> None:
    """[release] command, timeout and rerun_on_rollback reach the RunSpec and survive JSON."""
    manifest = parse_manifest(
        '[release]\ncommand = ["/app/migrate", "--to", "latest"]\ntimeout = 90\n'
        "rerun_on_rollback = true\n"
    )
    spec = manifest.run_spec()
    assert spec.release_command == ("/app/migrate", "--to", "latest")
    assert (spec.release_timeout, spec.release_rerun_on_rollback) == (90, True)
    assert RunSpec.from_dict(json.loads(json.dumps(spec.to_dict()))) == spec
    default = parse_manifest("").run_spec()
    assert (default.release_command, default.release_timeout) == ((), 300)
    assert default.release_rerun_on_rollback is False


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            '[processes.web]\ncommand = ["x"]',
            "homeport.toml: [processes.web] is not allowed: web is the app's own process",
        ),
        (
            '[processes.Worker]\ncommand = ["x"]',
            "homeport.toml: [processes.Worker] is not allowed: names are lower-case letters",
        ),
        (
            '[processes.worker]\ncommand = "/app/worker"',
            'homeport.toml: processes.worker.command = "/app/worker" is not allowed: use a '
            "non-empty list of strings",
        ),
        ("[processes.worker]\ncommand = []", "processes.worker.command = [...] is not allowed"),
        ('[processes.worker]\ncommand = ["a", 1]', "processes.worker.command = [...] is not"),
        ('[processes.worker]\ncommand = [""]', "whose first item names the program"),
        ("[processes.worker]\nreplicas = 1", "homeport.toml: [processes.worker] needs command"),
        (
            '[processes.worker]\ncommand = ["x"]\nreplicas = 101',
            "processes.worker.replicas = 101 is not allowed: use a number of replicas",
        ),
        (
            '[processes.worker]\ncommand = ["x"]\nmemory = "lots"',
            'processes.worker.memory = "lots" is not allowed: use a Kubernetes quantity',
        ),
        (
            '[processes.worker]\ncommand = ["x"]\nvolumes = ["Data"]',
            'processes.worker.volumes = "Data" is not allowed: use a list of names of [volumes]',
        ),
        (
            '[processes.worker]\ncommand = ["x"]\nport = 80',
            "unknown key processes.worker.port; [processes.worker] takes command, replicas",
        ),
        ("processes = 1", "processes = 1 is not allowed: use tables such as [processes.worker]"),
        ("[processes]\nworker = 1", "processes.worker = 1 is not allowed: use a table"),
        (
            '[cron.backup]\nschedule = "61 * * * *"\ncommand = ["x"]',
            'homeport.toml: cron.backup.schedule = "61 * * * *" is not allowed: minute 61 is'
            " out of range 0-59; use five fields",
        ),
        (
            '[cron.backup]\nschedule = "0 3 * * * *"\ncommand = ["x"]',
            'cron.backup.schedule = "0 3 * * * *" is not allowed: it has 6 fields, not 5',
        ),
        ('[cron.backup]\ncommand = ["x"]', "[cron.backup] needs schedule, e.g. schedule ="),
        ('[cron.backup]\nschedule = "@daily"', "[cron.backup] needs command"),
        (
            '[cron.backup]\nschedule = "@daily"\ncommand = "backup.sh"',
            'cron.backup.command = "backup.sh" is not allowed: use a non-empty list of strings',
        ),
        (
            '[cron.backup]\nschedule = "@daily"\ncommand = ["x"]\ntimeout = 0',
            "cron.backup.timeout = 0 is not allowed: use a number of seconds",
        ),
        (
            "\n".join(f'[processes.p{i}]\ncommand = ["x"]' for i in range(21)),
            "processes = {...} is not allowed: use at most 20 entries",
        ),
    ],
)
def test_bad_processes_and_cron_name_the_key(text: str, message: str) -> None:
    """Each refusal of a process or cron entry names its key and what is allowed."""
    with pytest.raises(ManifestError) as failure:
        parse_manifest(text)
    assert message in str(failure.value)


def test_cron_names_must_fit_the_app_s_cronjob_name() -> None:
    """`<app>-<name>` must fit the CronJob name limit; the push is refused before a build."""
    manifest = parse_manifest('[cron.nightly-backup]\nschedule = "@daily"\ncommand = ["x"]')
    manifest.check_app("blog")
    with pytest.raises(ManifestError, match=r"\[cron.nightly-backup\] makes the CronJob name"):
        manifest.check_app("a" * 40)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("volumes = 1", "homeport.toml: volumes = 1 is not allowed: use tables [volumes.NAME]"),
        ('[volumes]\ndata = "/x"', 'volumes.data = "/x" is not allowed: use a table'),
        ('[volumes.Data]\npath = "/x"\nsize = "1Gi"', "[volumes.Data] is not allowed: volume"),
        ('[volumes.a_b]\npath = "/x"\nsize = "1Gi"', "[volumes.a_b] is not allowed: volume"),
        ('[volumes.data]\nsize = "1Gi"', "volumes.data.path is missing; [volumes.data] needs"),
        ('[volumes.data]\npath = "/x"', "volumes.data.size is missing"),
        ('[volumes.data]\npath = "data"\nsize = "1Gi"', 'volumes.data.path = "data" is not all'),
        ('[volumes.data]\npath = "/"\nsize = "1Gi"', 'volumes.data.path = "/" is not allowed'),
        ('[volumes.data]\npath = "/a/../b"\nsize = "1Gi"', 'volumes.data.path = "/a/../b" is'),
        ('[volumes.data]\npath = "/a b"\nsize = "1Gi"', 'volumes.data.path = "/a b" is not'),
        ('[volumes.data]\npath = "/x"\nsize = "big"', 'volumes.data.size = "big" is not allowed'),
        ('[volumes.data]\npath = "/x"\nsize = "0Gi"', 'volumes.data.size = "0Gi" is not allowed'),
        ('[volumes.data]\npath = "/x"\nsize = 1', "volumes.data.size = 1 is not allowed"),
        ('[volumes.data]\npath = "/x"\nsize = "1Gi"\nmode = "rw"', "unknown key volumes.data.mode"),
        (
            '[volumes.a]\npath = "/x"\nsize = "1Gi"\n[volumes.b]\npath = "/x"\nsize = "1Gi"',
            'volumes.b.path = "/x" is not allowed: volumes.a is mounted there already',
        ),
        (
            "".join(f'[volumes.v{i}]\npath = "/v{i}"\nsize = "1Gi"\n' for i in range(17)),
            "use at most 16 volumes",
        ),
    ],
)
def test_bad_volumes_are_refused_naming_the_key(text: str, message: str) -> None:
    """Each [volumes] refusal names the key and what is allowed."""
    with pytest.raises(ManifestError) as failure:
        parse_manifest(text)
    assert message in str(failure.value)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("command = []", "release.command = [...] is not allowed: use a non-empty list"),
        ('command = "/app/migrate"', 'release.command = "/app/migrate" is not allowed'),
        ("command = [1]", "release.command = [...] is not allowed"),
        ('command = [""]', "whose first item names the program"),
        ("timeout = 0", "release.timeout = 0 is not allowed: use a number of seconds between 1"),
        ("timeout = 3601", "release.timeout = 3601 is not allowed"),
        ("rerun_on_rollback = 1", "release.rerun_on_rollback = 1 is not allowed: use true or"),
        ("retries = 2", "unknown key release.retries; [release] takes command, timeout"),
    ],
)
def test_bad_release_settings_name_the_key(text: str, message: str) -> None:
    """Each bad [release] value is refused with a message naming the key."""
    with pytest.raises(ManifestError) as refused:
        parse_manifest(f"[release]\n{text}\n")
    assert message in str(refused.value)
