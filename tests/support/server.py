"""Start the real service (granian, migrations applied) as a subprocess on a free loopback port."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from tests.support.template_db import copy_migrated, local_database_file

ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def base_env(data_dir: Path, **extra: str) -> dict[str, str]:
    """A clean environment for the service: nothing inherited that could point it at real services."""
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": os.environ.get("HOME", "/tmp"),
        "DATA_DIR": str(data_dir),
        "SESSION_SECRETS": "test-secret-key-0123456789abcdef",
        "LOG_LEVEL": "INFO",
        "PYTHONUNBUFFERED": "1",
    }
    env.update(extra)
    return env


def phone_env(data_dir: Path, openai: Any, twilio: Any, **extra: str) -> dict[str, str]:
    """The service's environment for phone calls: OpenAI and Twilio reached only through their doubles."""
    return base_env(
        data_dir,
        OPENAI_API_KEY=openai.api_key,
        OPENAI_BASE_URL=openai.base_url,
        TWILIO_ACCOUNT_SID=twilio.account_sid,
        TWILIO_AUTH_TOKEN=twilio.auth_token,
        TWILIO_API_BASE_URL=twilio.api_base_url,
        RECORDINGS_DIR=str(data_dir / "recordings"),
        **extra,
    )


@dataclass
class RunningServer:
    url: str
    port: int
    env: dict[str, str]
    process: subprocess.Popen[bytes]
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def migrate(env: Mapping[str, str]) -> None:
    """Bring the server's database to head: copied from the migrated template when it is a new local file
    (each server start would otherwise pay the whole Alembic chain), else through the real CLI."""
    url = env.get("DATABASE_URL") or f"sqlite+aiosqlite:///{Path(env['DATA_DIR']) / 'receptionist.db'}"
    path = local_database_file(url)
    if path is not None and not path.exists():
        copy_migrated(path)
        return
    subprocess.run(
        [str(VENV_BIN / "litestar"), "--app", "app.main:app", "database", "upgrade", "--no-prompt"],
        cwd=ROOT, env=dict(env), check=True, capture_output=True, timeout=120,
    )


@contextmanager
def run_server(env: Mapping[str, str], *, port: int | None = None, workers: int = 1) -> Iterator[RunningServer]:
    port = port or free_port()
    env = {**env, "PUBLIC_BASE_URL": env.get("PUBLIC_BASE_URL", f"http://127.0.0.1:{port}")}
    migrate(env)
    log_path = Path(env["DATA_DIR"]) / f"server-{port}.log"
    log_file = log_path.open("wb")
    process = subprocess.Popen(
        [str(VENV_BIN / "granian"), "--interface", "asgi", "--host", "127.0.0.1", "--port", str(port),
         "--workers", str(workers), "app.main:app"],
        cwd=ROOT, env=env, stdout=log_file, stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90  # a loaded shared machine has taken over 30 s to import and start
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"server exited early:\n{log_path.read_text(errors='replace')}")
            try:
                if httpx.get(url + "/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"server did not become healthy:\n{log_path.read_text(errors='replace')}")
            time.sleep(0.1)
        yield RunningServer(url=url, port=port, env=dict(env), process=process, log_path=log_path)
    finally:
        process.terminate()
        try:
            # As a platform does on a deploy (Heroku: 30 s from SIGTERM to SIGKILL): a loaded machine has taken
            # over 10 s to run the shutdown that finalises a live call's record.
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
        log_file.close()
