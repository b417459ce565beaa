"""A stand-in for lhd.remote.RemoteRunner: records every argument list and
returns what a healthy swarm outputs for the commands the production steps run."""

from __future__ import annotations

import json
from dataclasses import dataclass

SERVER_TIME = "2030-01-01T00:00:00"
LATER = "2030-01-01T00:00:05.123456789Z"


@dataclass
class Result:
    stdout: str = ""
    stderr: str = ""
    exited: int = 0

    @property
    def ok(self) -> bool:
        return self.exited == 0


class FakeRemote:
    """Records argv in `calls`. A command that contains a word of `failing` exits 1."""

    host = "server.test"

    def __init__(self, stack: str, stack_exists: bool = True, failing=()) -> None:
        self.stack = stack
        self.stack_exists = stack_exists
        self.failing = set(failing)
        self.files: dict[str, bytes] = {}
        self.calls: list[list[str]] = []
        self.stdin: list[str | None] = []
        self.image = ""
        self.current = ""

    def run(
        self, argv, *, check=True, hide=False, interactive=False, what=None, stdin=None
    ):
        argv = list(argv)
        self.calls.append(argv)
        self.stdin.append(stdin)
        result = self.answer(argv)
        if check and not result.ok:
            from lhd.errors import LhdError

            raise LhdError(f"{what or 'Command'} failed: {argv}")
        return result

    def output(self, argv, what=None) -> str:
        return self.run(argv, hide=True, what=what).stdout

    def succeeds(self, argv) -> bool:
        return self.run(argv, hide=True, check=False).ok

    def get(self, path: str) -> bytes:
        from lhd.errors import LhdError

        if path not in self.files:
            raise LhdError(f"{path} not found")
        return self.files[path]

    def exists(self, path: str) -> bool:
        return self.succeeds(["test", "-e", path])

    def put(self, content: bytes, path: str, private: bool = False) -> None:
        self.calls.append(["put", path])
        self.stdin.append(None)
        self.files[path] = content

    def answer(self, argv: list[str]) -> Result:
        if any(word in self.failing for word in argv):
            return Result(stderr="failed on purpose", exited=1)
        words = " ".join(argv)
        if argv[:2] == ["test", "-e"]:
            return Result(exited=0 if argv[2] in self.files else 1)
        if argv[0] == "date":
            return Result(SERVER_TIME + "\n")
        if argv[0] == "readlink":
            return Result(self.current + "\n", exited=0 if self.current else 1)
        if argv[:2] == ["ln", "-sfn"]:
            self.current = argv[2]
        if "stack deploy" in words:
            self.stack_exists = True
            self.image = next(a for a in argv if a.startswith("LUCKY_IMAGE=")).split(
                "=", 1
            )[1]
        if argv[:3] == ["docker", "service", "ls"]:
            names = [f"{self.stack}_{s}" for s in ("hasura", "lucky", "postgres")]
            return Result("\n".join(names) if self.stack_exists else "")
        if argv[:3] == ["docker", "service", "inspect"]:
            return Result(json.dumps([self.service(name) for name in argv[3:]]))
        if argv[:3] == ["docker", "service", "ps"]:
            task = {
                "DesiredState": "Running",
                "CurrentState": "Running 3 seconds ago",
                "Image": self.image_of(argv[-1]),
                "Error": "",
            }
            return Result(json.dumps(task) + "\n")
        if argv[:2] == ["docker", "ps"]:
            return Result("c0ffee\n")
        if argv[-1] == "bin/last_migration":
            return Result("20240101000000\n")
        return Result()

    def image_of(self, name: str) -> str:
        return self.image if name.endswith("_lucky") else "postgres:18"

    def service(self, name: str) -> dict:
        return {
            "Spec": {
                "Name": name,
                "Mode": {"Replicated": {"Replicas": 1}},
                "TaskTemplate": {
                    "ContainerSpec": {
                        "Image": self.image_of(name),
                        "Env": [f"APP_VERSION={self.image.rsplit(':', 1)[-1]}"],
                    }
                },
            },
            "UpdateStatus": {"State": "completed", "StartedAt": LATER},
        }
