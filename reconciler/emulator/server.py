"""Serving the emulator with uvicorn: in a background thread, or in the foreground."""

from __future__ import annotations

import errno
import logging
import socket
import threading
import time
from collections.abc import Callable
from types import TracebackType

import uvicorn

from reconciler.emulator.app import DropConnection, create_app
from reconciler.emulator.seed import EmulatorError
from reconciler.emulator.world import World


class _HideDrops(logging.Filter):
    """Dropped connections are injected faults, not server errors worth a traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        while exc is not None:
            if isinstance(exc, DropConnection):
                return False
            exc = exc.__cause__ or exc.__context__
        return True


def _config(world: World, host: str, port: int, log_level: str) -> uvicorn.Config:
    logging.getLogger("uvicorn.error").addFilter(_HideDrops())
    return uvicorn.Config(
        create_app(world),
        host=host,
        port=port,
        log_level=log_level,
        lifespan="off",
        access_log=log_level == "info",
        timeout_keep_alive=30,
    )


class RunningEmulator:
    """An emulator served on loopback from a daemon thread; `url` is its gateway."""

    def __init__(self, world: World, host: str = "127.0.0.1", port: int = 0) -> None:
        self.world = world
        sock = bind(host, port)
        self._sock = sock
        self.host, self.port = sock.getsockname()[:2]
        shown = f"[{self.host}]" if ":" in self.host else self.host
        self.url = f"http://{shown}:{self.port}"
        self._server = uvicorn.Server(_config(world, host, self.port, "critical"))
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [sock]}, daemon=True)

    def start(self) -> RunningEmulator:
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("emulator did not start")
            time.sleep(0.001)  # uvicorn starts in ~10 ms: a test starts one each (hundreds in the suite)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)
        self._sock.close()

    def __enter__(self) -> RunningEmulator:
        return self.start()

    def __exit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def bind(host: str, port: int) -> socket.socket:
    """A listening socket, or an `EmulatorError` that says what to change (never a banner
    followed by uvicorn's exit 3)."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    except socket.gaierror as exc:
        raise EmulatorError(f"cannot listen on {host}: unknown host ({exc.strerror}); pass --host") from exc
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(128)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise EmulatorError(f"port {port} on {host} is in use; pass --port") from exc
        raise EmulatorError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
    return sock


def serve_forever(world: World, host: str, port: int, on_bound: Callable[[], None] | None = None) -> None:
    """The `reconcile emulator` command: serve in the foreground until Ctrl-C.

    Raises `EmulatorError` (a ValueError) before serving when the address cannot be used;
    `on_bound` runs once the port is ours (the banner: never printed for a port in use).
    """
    sock = bind(host, port)
    if on_bound is not None:
        on_bound()
    try:
        uvicorn.Server(_config(world, host, port, "info")).run(sockets=[sock])
    finally:
        sock.close()
