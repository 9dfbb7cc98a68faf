"""Text from builds and pods made safe to show on a terminal.

A repository's build output and an app's logs are the sender's words. Control characters in
them reach the operator's terminal through `git push`, `homeport jobs -f` and `homeport logs`,
where escape sequences can rewrite or hide lines ("-----> blog v7 is live" over a failure) or
set the clipboard (OSC 52). Each C0 control but tab, DEL and each C1 control becomes `?`.
"""

from __future__ import annotations

import re

REPLACEMENT = "?"
# C0 (0x00-0x1f) but tab and newline, DEL, and C1 (0x80-0x9f) as code points of decoded text.
_CONTROLS = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def printable(text: str) -> str:
    """`text` with control characters replaced; newlines and tabs are kept, a carriage return
    before a newline is dropped (Windows line ends are no trick)."""
    return _CONTROLS.sub(REPLACEMENT, text.replace("\r\n", "\n"))


def printable_bytes(data: bytes) -> bytes:
    """printable() for UTF-8 bytes; undecodable bytes become U+FFFD."""
    return printable(data.decode("utf-8", "replace")).encode()
