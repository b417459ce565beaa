"""An optional record of every command line the production tasks run.

When `LHD_AUDIT_LOG` names a file, each argument list is appended to it as
one JSON line (`{"where": ..., "argv": [...]}`). The tests read it to prove
that no secret reaches a command line; it is also a plain deploy log.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence

AUDIT_VARIABLE = "LHD_AUDIT_LOG"


def record(where: str, argv: Sequence[str]) -> None:
    path = os.environ.get(AUDIT_VARIABLE)
    if not path:
        return
    line = json.dumps({"where": where, "argv": list(argv)})
    with open(path, "a", encoding="utf-8") as stream:
        stream.write(line + "\n")
