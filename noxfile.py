"""Sessions of the template repository: `nox -s tests` runs the test suite."""

import nox

nox.options.sessions = ["lint", "tests"]
nox.options.default_venv_backend = "venv"


@nox.session
def tests(session: nox.Session) -> None:
    """Run every test: unit, render, remote and stack (needs a Docker engine).

    Pass pytest options after `--`, for example `nox -s tests -- tests/unit`.
    Set LHD_SKIP_DOCKER=1 to skip the tests that need Docker.
    """
    session.install("-r", "requirements.txt")
    session.run("pytest", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    """Check formatting and lint the template's Python and the tests."""
    session.install("ruff")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session
def benchmark(session: nox.Session) -> None:
    """Time the tasks against the raw tools they wrap; prints ratios.

    Needs a Docker engine, like the tests. See docs/benchmarks.md.
    """
    session.install("-r", "requirements.txt")
    session.run("python", "benchmarks/bench.py", *session.posargs)
