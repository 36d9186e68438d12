"""`rerank serve`: scheduled retraining needs a Prefect server, whose scheduler creates the cron runs.

Prefect's ephemeral mode (what `rerank run` uses when no server is configured) has no scheduler: serving a flow
there polls forever for runs that are never created. So when no ``PREFECT_API_URL`` is configured, `rerank serve`
starts `prefect server start` on a free loopback port (its database under ``<root>/.prefect/``, so the schedule
and the run history stay with the project), serves the flow against it, and stops it on exit. With a configured
server it serves against that one and starts nothing.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

from rerank_lib.errors import RerankError

logger = logging.getLogger(__name__)

STARTUP_SECONDS = 120.0
STOP_SECONDS = 20.0


class LocalServerError(RerankError):
    """The local Prefect server did not start."""


def free_loopback_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _tail(path: Path, chars: int = 3000) -> str:
    return path.read_text(errors="replace")[-chars:] if path.is_file() else ""


def _wait_healthy(process: subprocess.Popen, health_url: str, log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise LocalServerError(f"`prefect server start` exited with {process.returncode}:\n{_tail(log)}")
        with contextlib.suppress(urllib.error.URLError, OSError):
            with urllib.request.urlopen(health_url, timeout=2) as response:
                if response.status == 200:
                    return
        time.sleep(0.5)
    raise LocalServerError(f"The local Prefect server was not healthy after {timeout:.0f}s:\n{_tail(log)}")


def _stop(process: subprocess.Popen) -> None:
    """SIGTERM the server's process group, SIGKILL what is left after ``STOP_SECONDS``."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=STOP_SECONDS)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=STOP_SECONDS)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)  # anything the server itself started


@contextlib.contextmanager
def local_prefect_server(home: Path, timeout: float = STARTUP_SECONDS) -> Iterator[str]:
    """Run `prefect server start` on a free loopback port with its database under ``home``; yields its API URL."""
    home.mkdir(parents=True, exist_ok=True)
    port = free_loopback_port()
    env = {**os.environ, "PREFECT_HOME": str(home)}
    env.pop("PREFECT_API_URL", None)
    command = [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1", "--port", str(port)]
    log = home / "server.log"
    with log.open("wb") as handle:
        # Its own process group, so stopping it also stops whatever it started.
        process = subprocess.Popen(command, env=env, stdout=handle, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        _wait_healthy(process, f"http://127.0.0.1:{port}/api/health", log, timeout)
        logger.info(
            "Started a local Prefect server (pid %d) for the schedule: http://127.0.0.1:%d (log: %s)",
            process.pid,
            port,
            log,
        )
        yield f"http://127.0.0.1:{port}/api"
    finally:
        _stop(process)
        logger.info("Stopped the local Prefect server")


def configured_api_url() -> str | None:
    """The Prefect API URL from the environment or the active Prefect profile, if any."""
    from prefect.settings import get_current_settings

    return get_current_settings().api.url


def serve_on_schedule(root: Path, params_path: str, profile: str | None) -> None:
    """Serve the retraining flow on params.yaml's schedule, against a configured or a local Prefect server."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from flows.serve import serve

    if configured_api_url():
        serve(root=str(root), params_path=params_path, profile=profile)
        return
    # SIGTERM (from a supervisor) must unwind through the server's cleanup like Ctrl-C does; the runner installs
    # its own graceful handler once it has started.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    with local_prefect_server(Path(root) / ".prefect") as api_url, temporary_settings({PREFECT_API_URL: api_url}):
        serve(root=str(root), params_path=params_path, profile=profile)
