"""Benchmark LHD's tasks against the raw tools they wrap, side by side in one
run on this machine's Docker engine, and print the ratios.

Run with `nox -s benchmark` (or `python benchmarks/bench.py` in an
environment with requirements.txt installed). Needs a Docker engine with
Compose v2, like the test suite; uses the same local test images.
Results and how to read them: docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import http.server
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "template"))
sys.path.insert(0, str(REPO / "tests"))

from conftest import free_port  # noqa: E402 - needs the path above

BIN = Path(sys.executable).parent
PROJECT = "lhd_bench"


@dataclass
class Result:
    name: str
    measured: str
    goal: str
    met: bool
    detail: str = ""


def timed(command: list[str], cwd: Path, check: bool = True) -> float:
    started = time.perf_counter()
    result = subprocess.run(
        command, cwd=cwd, capture_output=True, text=True, stdin=subprocess.DEVNULL
    )
    elapsed = time.perf_counter() - started
    if check and result.returncode != 0:
        raise SystemExit(
            f"{' '.join(command)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}"
        )
    return elapsed


def median_of(runs: int, measure: Callable[[], float]) -> tuple[float, list[float]]:
    samples = [measure() for _ in range(runs)]
    return statistics.median(samples), samples


def make_project(workdir: Path, images: dict[str, str]) -> Path:
    from conftest import copy_fixture_app, generate
    from lhd import devenv, envfile, settings

    root = generate(copy_fixture_app(workdir / PROJECT), project_name=PROJECT)
    devenv.sync(settings.load(root))
    envfile.update(
        root / ".env",
        {
            "POSTGRES_IMAGE": images["postgres"],
            "HASURA_IMAGE": images["hasura"],
            "CRYSTAL_IMAGE": images["crystal"],
            "LUCKY_PORT": str(free_port()),
            "HASURA_PORT": str(free_port()),
            "HASURA_CONSOLE_PORT": str(free_port()),
            "HASURA_CONSOLE_API_PORT": str(free_port()),
        },
    )
    return root


def raw_compose(root: Path) -> list[str]:
    return [
        "docker", "compose", "--project-name", PROJECT, "--env-file", str(root / ".env"),
        "--file", str(root / "Docker" / "compose.yml"),
        "--file", str(root / "Docker" / "compose.dev.yml"),
    ]  # fmt: skip


def bench_up_from_stopped(root: Path, runs: int) -> Result:
    inv = [str(BIN / "inv"), "up", "--detach"]
    timed(inv, root)  # builds the image and creates the containers once
    raw = raw_compose(root)
    inv_samples, raw_samples = [], []
    for _ in range(runs):
        timed([*raw, "stop"], root)
        inv_samples.append(timed(inv, root))
        timed([*raw, "stop"], root)
        raw_samples.append(timed([*raw, "up", "--detach", "--wait"], root))
    ratio = statistics.median(inv_samples) / statistics.median(raw_samples)
    return Result(
        "inv up from a stopped stack / docker compose up -d --wait",
        f"{ratio:.2f}× ({statistics.median(inv_samples):.2f} s / {statistics.median(raw_samples):.2f} s)",
        "≤ 1.15×",
        ratio <= 1.15,
        f"inv {fmt(inv_samples)}; raw {fmt(raw_samples)}",
    )


def bench_up_when_up(root: Path, runs: int) -> Result:
    inv = [str(BIN / "inv"), "up", "--detach"]
    timed(inv, root)
    median, samples = median_of(runs, lambda: timed(inv, root))
    return Result(
        "inv up when everything is up",
        f"{median:.2f} s",
        "< 2 s",
        median < 2,
        fmt(samples),
    )


class LateServer(http.server.ThreadingHTTPServer):
    """An HTTP server that starts answering 200 at a known moment."""


def bench_readiness(runs: int) -> Result:
    from lhd import readiness

    latencies = []
    for index in range(runs):
        port = free_port()
        ready_at: list[float] = []

        def serve(
            index: int = index, port: int = port, ready_at: list[float] = ready_at
        ) -> None:
            time.sleep(0.3 + 0.037 * index)
            handler = type("Ok", (http.server.BaseHTTPRequestHandler,), {
                "do_GET": lambda self: (self.send_response(200), self.end_headers()),
                "log_message": lambda self, *args: None,
            })  # fmt: skip
            server = LateServer(("127.0.0.1", port), handler)
            ready_at.append(time.monotonic())
            server.timeout = 0.05
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline:
                server.handle_request()
            server.server_close()

        thread = threading.Thread(target=serve, daemon=True)
        thread.start()
        readiness.wait_for(
            readiness.http_ok(f"http://127.0.0.1:{port}/"), "late server", timeout=10
        )
        noticed = time.monotonic()
        latencies.append(noticed - ready_at[0])
        thread.join()
    worst = max(latencies)
    return Result(
        "readiness: service ready → task notices",
        f"median {statistics.median(latencies) * 1000:.0f} ms, max {worst * 1000:.0f} ms",
        "< 250 ms",
        worst < 0.25,
        f"{runs} runs, poll interval {readiness.POLL_INTERVAL * 1000:.0f} ms",
    )


def bench_list(root: Path, runs: int) -> list[Result]:
    results = []
    for tool in ("inv", "fab"):
        if not (BIN / tool).exists() or (
            tool == "fab" and not (root / "fabfile.py").exists()
        ):
            results.append(
                Result(
                    f"{tool} --list start-up",
                    "not measured",
                    "< 0.5 s",
                    False,
                    f"{tool} or its file is missing",
                )
            )
            continue
        median, samples = median_of(
            runs, lambda tool=tool: timed([str(BIN / tool), "--list"], root)
        )
        results.append(
            Result(
                f"{tool} --list start-up",
                f"{median:.2f} s",
                "< 0.5 s",
                median < 0.5,
                fmt(samples),
            )
        )
    return results


def bench_copier(workdir: Path, runs: int) -> Result:
    def copy_once() -> float:
        destination = Path(tempfile.mkdtemp(dir=workdir)) / "demo_app"
        command = [
            str(BIN / "copier"),
            "copy",
            "--trust",
            "--defaults",
            "--quiet",
            "--vcs-ref",
            "HEAD",
            str(REPO),
            str(destination),
        ]
        return timed(command, workdir)

    median, samples = median_of(runs, copy_once)
    return Result(
        "copier copy of the default answers",
        f"{median:.2f} s",
        "< 3 s",
        median < 3,
        fmt(samples),
    )


def bench_deploy() -> list[Result]:
    """Run the deploy benchmark of the stack tests and read what it printed."""
    command = [
        sys.executable, "-m", "pytest", "tests/stack/test_deploy.py", "-q", "-s",
        "-p", "no:cacheprovider", "-m", "benchmark or not benchmark",
    ]  # fmt: skip
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True)
    # pytest prints progress dots before the line on the same row.
    lines = re.findall(r"BENCHMARK-DEPLOY (\{.*\})", result.stdout)
    if not lines:
        tail = "\n".join(result.stdout.splitlines()[-15:])
        return [
            Result(
                "fab deploy under load",
                "not measured",
                "0 failed requests",
                False,
                tail,
            )
        ]
    report = json.loads(lines[-1])
    ratio = report["fab_deploy_seconds"] / report["stack_deploy_converged_seconds"]
    return [
        Result(
            "failed requests during fab deploy",
            f"{report['fab_deploy_failed_requests']} of {report['fab_deploy_requests']}",
            "0",
            report["fab_deploy_failed_requests"] == 0,
            f"bare stack deploy: {report['stack_deploy_failed_requests']} of {report['stack_deploy_requests']}",
        ),
        Result(
            "fab deploy / docker stack deploy until converged",
            f"{ratio:.2f}× ({report['fab_deploy_seconds']:.1f} s / {report['stack_deploy_converged_seconds']:.1f} s)",
            "none set",
            True,
            f"the bare command alone returns in {report['stack_deploy_command_seconds']:.1f} s",
        ),
    ]


def fmt(samples: list[float]) -> str:
    return ", ".join(f"{sample:.2f}" for sample in samples) + " s"


def print_table(results: list[Result]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"LHD benchmark ({platform.node()}, {os.cpu_count()} CPUs)")
    for column in ("measure", "result", "goal", "met", "samples"):
        table.add_column(column)
    for result in results:
        table.add_row(
            result.name,
            result.measured,
            result.goal,
            "yes" if result.met else "NO",
            result.detail,
        )
    Console(width=160).print(table)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--runs",
        type=int,
        default=3,
        help="Repetitions of each timed command (default: 3).",
    )
    parser.add_argument(
        "--skip-deploy",
        action="store_true",
        help="Leave out the deploy benchmark, which takes about 8 minutes.",
    )
    arguments = parser.parse_args()

    from images.build import build_all

    images = build_all()
    workdir = Path(tempfile.mkdtemp(prefix="lhd-bench-"))
    root = make_project(workdir, images)
    results: list[Result] = []
    try:
        results.append(bench_up_from_stopped(root, arguments.runs))
        results.append(bench_up_when_up(root, arguments.runs + 2))
        results.append(bench_readiness(20))
        results += bench_list(root, 10)
        results.append(bench_copier(workdir, arguments.runs))
    finally:
        subprocess.run(
            [str(BIN / "inv"), "down", "--volumes"], cwd=root, capture_output=True
        )
        shutil.rmtree(workdir, ignore_errors=True)
    if not arguments.skip_deploy:
        results += bench_deploy()
    print_table(results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
