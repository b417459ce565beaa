"""Project settings, read from the committed `lhd.toml` at the project root."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path

from lhd.errors import LhdError

SETTINGS_FILE = "lhd.toml"


@dataclass(frozen=True)
class Settings:
    """Values that identify the project; they change only with `copier update`."""

    root: Path
    project_name: str
    registry_image: str
    stack_name: str
    app_domain: str

    @property
    def compose_dir(self) -> Path:
        return self.root / "Docker"

    @property
    def env_file(self) -> Path:
        return self.root / ".env"

    @property
    def env_example_file(self) -> Path:
        return self.root / ".env.example"

    @property
    def state_dir(self) -> Path:
        return self.root / ".lhd"

    @property
    def dev_image(self) -> str:
        return f"{self.project_name}_lucky:dev"

    @property
    def test_project(self) -> str:
        return f"{self.project_name}_test"


def find_root(start: Path | None = None) -> Path:
    """Return the nearest folder at or above `start` that contains `lhd.toml`."""
    start = (start or Path.cwd()).resolve()
    for folder in (start, *start.parents):
        if (folder / SETTINGS_FILE).is_file():
            return folder
    raise LhdError(
        f"No LHD project found in {start} or any folder above it "
        f"(looked for {SETTINGS_FILE}). Run this command inside a project "
        "generated with `copier copy --trust <LHD template> <folder>`."
    )


def load(start: Path | None = None) -> Settings:
    """Read `lhd.toml` from the project that contains `start` (default: cwd)."""
    root = find_root(start)
    path = root / SETTINGS_FILE
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as error:
        raise LhdError(f"Cannot read {path}: {error}") from error
    project = data.get("project", {})
    try:
        return Settings(
            root=root,
            project_name=project["name"],
            registry_image=project.get("registry_image", ""),
            stack_name=project.get("stack_name", project["name"]),
            app_domain=project.get("app_domain", ""),
        )
    except KeyError as error:
        raise LhdError(
            f"{path} is missing the key project.{error.args[0]}; "
            "restore it from the template with `copier update`."
        ) from error
