"""`BackgroundServer`: an ASGI app served by uvicorn on a background thread, on a port of its
own — for notebooks, tests and benchmarks that need the server and the client in one process."""

from __future__ import annotations

import socket
import threading
import time
from typing import Any

from ragtune.errors import RagtuneError


class BackgroundServer:
    """Serve `app` on `host` (port 0: a free one) while inside a ``with`` block.

    Args:
        app: The ASGI app (`create_app`).
        host: The address to listen on; loopback by default.
        port: The port; 0 picks a free one (see `base_url`).
        startup_timeout: Seconds the server may take to start.
    """

    def __init__(
        self, app: Any, host: str = "127.0.0.1", port: int = 0, startup_timeout: float = 60.0
    ) -> None:
        import uvicorn

        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._socket.bind((host, port))
        self.host, self.port = self._socket.getsockname()[:2]
        config = uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=10)
        self.server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self._socket]}, daemon=True
        )
        self.startup_timeout = startup_timeout

    @property
    def base_url(self) -> str:
        """The API root to give clients: ``http://127.0.0.1:43210/v1``."""
        return f"http://{self.host}:{self.port}/v1"

    def __enter__(self) -> BackgroundServer:
        self._thread.start()
        deadline = time.monotonic() + self.startup_timeout
        while not self.server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RagtuneError(f"the server on {self.base_url} did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self._thread.join(30)
        self._socket.close()
