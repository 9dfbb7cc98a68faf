"""Upload-pack requests to a shallow app repository (pure request handling)."""

from __future__ import annotations

import gzip
import io
from pathlib import Path
from typing import Any

from homeport.receiver import shallow_clone


def _ask(repo: Path, body: bytes, encoding: str = "") -> tuple[list[str], bytes | None, bytes]:
    started: list[str] = []
    environ: dict[str, Any] = {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": "/blog.git/git-upload-pack",
        "wsgi.input": io.BytesIO(body),
        "HTTP_CONTENT_ENCODING": encoding,
    }
    answer = shallow_clone.refuse_deep_request(
        repo, environ, lambda status, headers: started.append(status)
    )
    return started, None if answer is None else b"".join(answer), environ["wsgi.input"].read()


def test_only_requests_with_a_depth_reach_a_shallow_repository(tmp_path: Path) -> None:
    """No deepen: git's ERR packet; deepen (plain or gzip): passed on with the body intact."""
    deep = b"0032want " + b"a" * 40 + b"\n00000009done\n"
    shallow = b"0032want " + b"a" * 40 + b"\n000cdeepen 10000"
    assert _ask(tmp_path, deep)[1] is None  # not shallow: nothing to refuse
    (tmp_path / "shallow").write_text("a" * 40 + "\n")
    started, answer, _ = _ask(tmp_path, deep)
    assert started == ["200 OK"]
    assert answer is not None and answer[4:].startswith(b"ERR this app's repository is shallow")
    assert int(answer[:4], 16) == len(answer)
    for body, encoding in ((shallow, ""), (gzip.compress(shallow), "gzip")):
        started, answer, passed_on = _ask(tmp_path, body, encoding)
        assert (started, answer, passed_on) == ([], None, body)
    started, answer, _ = _ask(tmp_path, gzip.compress(deep), "gzip")
    assert answer is not None and b"ERR" in answer
