"""Shared fixtures for the interop suite: where the binary and the installed clients
are, the server started over stdio or Streamable HTTP, and helpers that run client CLIs
with deadlines. scripts/interop sets the environment."""

import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

# Deadline for one CLI client invocation (Inspector, conformance run).
CLI_TIMEOUT_S = 180
# Deadline for the HTTP server to answer /healthz after start.
START_TIMEOUT_S = 30
# Deadline for one MCP session in the Python SDK tests.
SESSION_TIMEOUT_S = 60
# The server key the HTTP tests present (a test value, not a secret).
SERVER_KEY = "interop-key-0123456789abcdef"


def _env_path(name: str) -> Path:
    value = os.environ.get(name)
    if not value:
        pytest.exit(f"{name} is not set: run the suite through scripts/interop", returncode=2)
    return Path(value)


@pytest.fixture(scope="session")
def anyio_backend():
    return "asyncio"


@pytest.fixture(scope="session")
def binary() -> Path:
    """The real fly-machines-mcp binary built by scripts/interop."""
    path = _env_path("FLY_MCP_INTEROP_BIN")
    assert path.is_file(), f"binary not built: {path}"
    return path


# What `serve --sandbox` says while the simulator is not wired into it yet.
SANDBOX_PLACEHOLDER = "sandbox simulator is not available yet"
# Without the sandbox, the server runs with a dummy token against an unreachable API on
# loopback (no network): the protocol-level tests still run, Fly-backed calls are skipped.
OFFLINE_ENV = {
    "FLY_API_TOKEN": "interop-dummy-token",
    "FLY_API_HOSTNAME": "http://127.0.0.1:9",
    "FLY_API_BASE_URL": "http://127.0.0.1:9",
}


@dataclass
class ServerCommand:
    args: list[str]
    env: dict[str, str]
    sandbox: bool

    def full_env(self) -> dict[str, str]:
        return {**os.environ, **self.env}


@pytest.fixture(scope="session")
def server_command(binary) -> ServerCommand:
    """How the server is started: `serve --sandbox` (in-process simulator, no token, no
    network). Only while the binary itself says the sandbox is not available yet, plain
    `serve` offline instead; any other start-up failure fails the suite."""
    probe = run([str(binary), "serve", "--sandbox"], timeout=30, stdin=subprocess.DEVNULL)
    if SANDBOX_PLACEHOLDER in probe.stderr:
        return ServerCommand(args=["serve"], env=dict(OFFLINE_ENV), sandbox=False)
    # (With stdin closed at once the server stops; how it exits is not checked here:
    # every test below starts it properly and fails on its own if it does not serve.)
    return ServerCommand(args=["serve", "--sandbox"], env={}, sandbox=True)


@pytest.fixture
def needs_sandbox(server_command):
    """Skips a test that needs a Fly backend while the sandbox is not available."""
    if not server_command.sandbox:
        pytest.skip("serve --sandbox is not available in this build yet")


@pytest.fixture(scope="session")
def serve_args(server_command) -> list[str]:
    return server_command.args


@pytest.fixture(scope="session")
def interop_dir() -> Path:
    """target/interop: the installed Node toolchain and venv."""
    return _env_path("FLY_MCP_INTEROP_DIR")


@pytest.fixture(scope="session")
def node_bin(interop_dir: Path) -> Path:
    """node_modules/.bin of the pinned Node 22 + Inspector + conformance install."""
    return interop_dir / "node" / "node_modules" / ".bin"


def run(cmd: list[str], timeout: float = CLI_TIMEOUT_S, **kwargs) -> subprocess.CompletedProcess:
    """Run a command to completion with a deadline, capturing text output."""
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kwargs)


def free_port() -> int:
    """A free loopback port (bound and released; the server binds it right after)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class HttpServer:
    url: str
    key: str | None
    log: Path

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"} if self.key else {}


def _start_http(binary: Path, command: ServerCommand, workdir: Path, key: str | None, extra_args=()):
    port = free_port()
    args = [str(binary), *command.args, "--http", f"127.0.0.1:{port}", *extra_args]
    if key is not None:
        keys = workdir / "auth-keys"
        keys.write_text(f"# server keys for the interop suite\ninterop:{key}\n")
        args += ["--auth-keys", str(keys)]
    log = workdir / "server.log"
    log_file = log.open("w")
    proc = subprocess.Popen(
        args,
        stdin=subprocess.DEVNULL,
        stdout=log_file,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        env=command.full_env(),
    )
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        if proc.poll() is not None:
            log_file.close()
            pytest.fail(f"server exited with {proc.returncode}: {log.read_text()}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as r:
                if r.status == 200:
                    break
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        if time.monotonic() > deadline:
            _stop(proc)
            pytest.fail(f"server did not answer /healthz within {START_TIMEOUT_S}s: {log.read_text()}")
        time.sleep(0.05)
    return proc, log_file, HttpServer(url=f"http://127.0.0.1:{port}/mcp", key=key, log=log)


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


@pytest.fixture(scope="module")
def http_server(binary, server_command, tmp_path_factory):
    """`serve --sandbox --http 127.0.0.1:PORT --auth-keys FILE`, stopped after the module."""
    proc, log_file, server = _start_http(binary, server_command, tmp_path_factory.mktemp("http"), SERVER_KEY)
    try:
        yield server
    finally:
        _stop(proc)
        log_file.close()


@pytest.fixture(scope="module")
def open_http_server(binary, server_command, tmp_path_factory):
    """The same on loopback without auth (the conformance suite cannot send a key)."""
    proc, log_file, server = _start_http(binary, server_command, tmp_path_factory.mktemp("open"), None)
    try:
        yield server
    finally:
        _stop(proc)
        log_file.close()
