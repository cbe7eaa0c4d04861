"""The verifying TLS context of every gateway session: loaded once per CA setting, and early.

Loading the CA bundle costs ~20 ms of CPU and OpenSSL does it without holding the GIL, so
`warm()` loads it on a thread of its own once apply has planned work, while it shows the
plan and imports httpx (~45 ms): on a machine with a second core it is ready, free, by the
time the first session is made. A run with nothing to do, or refused before, loads none. `context()` is what `httpx.Client(verify=True)` builds from this environment
with httpx 0.28 and later (SSL_CERT_FILE, else SSL_CERT_DIR, else certifi's bundle; the
floor in pyproject.toml); one context is safe to share between clients and threads. httpx is
not imported here: `plan` never needs it.
"""

from __future__ import annotations

import atexit
import os
import ssl
import threading
from concurrent.futures import Future
from concurrent.futures import wait as wait_for

_Key = tuple[str | None, str | None]
_lock = threading.Lock()
_loaded: dict[_Key, Future[ssl.SSLContext]] = {}
EXIT_WAIT = 1.0  # seconds the process's exit waits for a load still under way


def context() -> ssl.SSLContext:
    """The context for this environment's CA setting, loaded now unless it is loaded or loading."""
    key = _setting()
    future, mine = _claim(key)
    if mine:
        try:
            _load(future, key)
        finally:  # interrupted before `_load` could say so: the next call tries again
            if not future.done():
                _abandon(future, key, RuntimeError("loading the CA bundle was interrupted"))
    return future.result()


def warm() -> None:
    """Start loading the context for this environment's CA setting on a thread of its own;
    `context()` waits for it. A daemon, so that a CA file that never finishes loading (a
    hung mount) cannot hold the process's exit; the exit waits up to `EXIT_WAIT` for a load
    under way instead, rather than tear OpenSSL down under it."""
    key = _setting()
    future, mine = _claim(key)
    if not mine:
        return
    try:
        threading.Thread(target=_load, args=(future, key), name="tls-warm", daemon=True).start()
    except Exception as exc:  # no thread to be had: the first `context()` loads it itself
        _abandon(future, key, exc)
    except BaseException as exc:
        _abandon(future, key, exc)
        raise


def _setting() -> _Key:
    return (os.environ.get("SSL_CERT_FILE") or None, os.environ.get("SSL_CERT_DIR") or None)


def _claim(key: _Key) -> tuple[Future[ssl.SSLContext], bool]:
    """The one load of `key`, and whether the caller is to do it."""
    with _lock:
        future = _loaded.get(key)
        if future is not None:
            return future, False
        future = _loaded[key] = Future()
        return future, True


def _load(future: Future[ssl.SSLContext], key: _Key) -> None:
    cafile, capath = key
    try:
        if cafile:
            ctx = ssl.create_default_context(cafile=cafile)
        elif capath:
            ctx = ssl.create_default_context(capath=capath)
        else:
            import certifi

            ctx = ssl.create_default_context(cafile=certifi.where())
    except Exception as exc:  # a bad SSL_CERT_FILE: every waiter is told; a later call tries again
        _abandon(future, key, exc)
        return
    except BaseException:  # a Ctrl-C in the thread loading it: only that thread hears it
        _abandon(future, key, RuntimeError("loading the CA bundle was interrupted"))
        raise
    future.set_result(ctx)


def _abandon(future: Future[ssl.SSLContext], key: _Key, exc: BaseException) -> None:
    with _lock:
        if _loaded.get(key) is future:
            del _loaded[key]
    if not future.done():
        future.set_exception(exc)


@atexit.register
def _settle() -> None:
    with _lock:
        loading = [f for f in _loaded.values() if not f.done()]
    if loading:
        wait_for(loading, timeout=EXIT_WAIT)
