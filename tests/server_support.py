"""Real servers for end-to-end tests: start a process on a loopback port, wait until healthy, stop its whole group.

Shared by the tests that run `prefect server`, `prefect worker`, `mlflow server`, `mlflow models serve` and the
`rerank serve-model` servers; every server is started and stopped by the test (or fixture) that needs it.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.e2e_support import env_with_venv

STARTUP_SECONDS = 180


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def clean_env() -> dict[str, str]:
    """This interpreter's environment without any Prefect or MLflow settings inherited from the caller."""
    return {k: v for k, v in env_with_venv().items() if not k.startswith(("PREFECT_", "MLFLOW_"))}


def tail(path: Path, chars: int = 4000) -> str:
    return path.read_text(errors="replace")[-chars:] if path.is_file() else "(no log)"


@dataclass
class Server:
    name: str
    process: subprocess.Popen
    health_url: str
    log: Path


def start(
    name: str, command: list[str], env: dict[str, str], health_url: str, log: Path, cwd: Path | None = None
) -> Server:
    """Start a server in its own process group (so stopping it also stops its workers)."""
    with log.open("wb") as handle:
        process = subprocess.Popen(
            command, env=env, cwd=cwd, stdout=handle, stderr=subprocess.STDOUT, start_new_session=True
        )
    return Server(name, process, health_url, log)


def wait_healthy(servers: list[Server], timeout: float = STARTUP_SECONDS) -> None:
    """Poll each server's health endpoint until it answers 200, failing at the deadline or when one exits."""
    deadline = time.monotonic() + timeout
    pending = list(servers)
    while pending:
        for server in list(pending):
            if server.process.poll() is not None:
                pytest.fail(f"{server.name} exited with {server.process.returncode}:\n{tail(server.log)}")
            try:
                with urllib.request.urlopen(server.health_url, timeout=2) as response:
                    if response.status == 200:
                        pending.remove(server)
            except (urllib.error.URLError, OSError):
                pass
        if pending and time.monotonic() > deadline:
            names = ", ".join(s.name for s in pending)
            pytest.fail(f"{names} not healthy after {timeout:.0f}s:\n" + "\n".join(tail(s.log) for s in pending))
        if pending:
            time.sleep(0.5)


def stop(server: Server) -> None:
    """SIGTERM the server's process group, SIGKILL it if it has not exited after 20 seconds."""
    if server.process.poll() is None:
        try:
            os.killpg(server.process.pid, signal.SIGTERM)
            server.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(server.process.pid, signal.SIGKILL)
            server.process.wait(timeout=20)
        except ProcessLookupError:
            pass
    try:  # workers left in the group (uvicorn, job runners) go too
        os.killpg(server.process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def group_gone(pgid: int, timeout: float = 20.0) -> bool:
    """Whether no process of the group is left (orphaned workers may take a moment to be reaped)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.2)
    return False


def port_closed(port: int) -> bool:
    """Whether nothing accepts connections on the loopback port any more."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) != 0


def prefect_server(tmp_path: Path, extra_env: dict[str, str] | None = None) -> tuple[Server, str, dict[str, str]]:
    """A `prefect server start` (sqlite under tmp_path, no UI); returns it, its API URL and the clients' env."""
    port = free_port()
    home = tmp_path / "prefect-home"
    env = {
        **clean_env(),
        "PREFECT_HOME": str(home),
        "PREFECT_API_DATABASE_CONNECTION_URL": f"sqlite+aiosqlite:///{tmp_path / 'prefect.db'}",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_SERVER_UI_ENABLED": "false",
        **(extra_env or {}),
    }
    command = [str(Path(sys.executable).parent / "prefect"), "server", "start", "--host", "127.0.0.1"]
    command += ["--port", str(port), "--no-ui", "--analytics-off"]
    server = start(
        "prefect server", command, env, f"http://127.0.0.1:{port}/api/health", tmp_path / "prefect-server.log"
    )
    api_url = f"http://127.0.0.1:{port}/api"
    client_env = {**clean_env(), "PREFECT_API_URL": api_url, "PREFECT_HOME": str(home)}
    return server, api_url, client_env
