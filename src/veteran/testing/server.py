"""Serve an ASGI app with uvicorn on loopback in a background thread, for tests and benchmarks.

The socket is bound before uvicorn starts, so port 0 gives a free port that is known at once.
"""

from __future__ import annotations

import asyncio
import socket
import subprocess
import threading
import time
import urllib.request
from collections.abc import Callable, Coroutine
from types import TracebackType
from typing import Any, TypeVar

import uvicorn

T = TypeVar("T")


def free_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on right now (for servers started in another process)."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def wait_http(url: str, process: subprocess.Popen[bytes], what: str, timeout: float) -> None:
    """Poll `url` until it answers 200; fail at once if `process` exits first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with status {process.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                if resp.status == 200:
                    return
        except OSError:  # refused, reset, timed out, or an HTTP error status
            pass
        time.sleep(0.05)
    raise RuntimeError(f"{what} did not answer 200 on {url} within {timeout:.0f}s")


class ServerThread:
    def __init__(
        self, app: Any, *, host: str = "127.0.0.1", port: int = 0,
        startup_timeout: float = 120.0, **uvicorn_options: Any,
    ) -> None:
        self.app = app
        self.host = host
        self.port = port
        self.startup_timeout = startup_timeout
        self.options: dict[str, Any] = {
            "loop": "uvloop", "http": "httptools", "lifespan": "on", "proxy_headers": False,
            "access_log": False, "log_level": "warning", "timeout_graceful_shutdown": 5,
            **uvicorn_options,
        }
        self._server: uvicorn.Server | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> ServerThread:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(self.app, **self.options)
        server = self._server = uvicorn.Server(config)

        async def run() -> None:
            self.loop = asyncio.get_running_loop()
            await server.serve(sockets=[sock])

        def main() -> None:
            with asyncio.Runner(loop_factory=config.get_loop_factory()) as runner:
                runner.run(run())

        self._thread = threading.Thread(target=main, name="uvicorn", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + self.startup_timeout
        while not server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                sock.close()
                raise RuntimeError("server did not start (see the log above)")
            time.sleep(0.01)
        return self

    def call(self, func: Callable[[], Coroutine[Any, Any, T]], timeout: float = 10) -> T:
        """Run `func()` on the server's event loop and return its result (tests inspect state)."""
        assert self.loop is not None, "server not started"
        return asyncio.run_coroutine_threadsafe(func(), self.loop).result(timeout)

    def stop(self) -> None:
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(timeout=30)
        self._server = self._thread = None

    def __enter__(self) -> ServerThread:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
