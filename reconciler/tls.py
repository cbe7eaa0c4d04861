"""The verifying TLS context of every gateway session: loaded once per CA setting, and early.

Loading the CA bundle costs ~20 ms of CPU and OpenSSL does it without holding the GIL, so
`warm()` loads it on a thread of its own while apply imports, reads its manifests and its
ledger and plans: on a machine with a second core it is ready, free, by the time the first
session is made. `context()` is what `httpx.Client(verify=True)` would build from this
environment (SSL_CERT_FILE, else SSL_CERT_DIR, else certifi's bundle); one context is safe to
share between clients and threads. httpx is not imported here: `plan` never needs it.
"""

from __future__ import annotations

import os
import ssl
import threading
from concurrent.futures import Future

_Key = tuple[str | None, str | None]
_lock = threading.Lock()
_loaded: dict[_Key, Future[ssl.SSLContext]] = {}


def context() -> ssl.SSLContext:
    """The context for this environment's CA setting, loaded now unless it is loaded or loading."""
    key = _setting()
    future, mine = _claim(key)
    if mine:
        _load(future, key)
    return future.result()


def warm() -> None:
    """Start loading the context for this environment's CA setting on a thread of its own;
    `context()` waits for it. Not a daemon: a run that ends at once (nothing to do, a
    refusal) waits the few milliseconds left at exit, rather than leave OpenSSL loading
    while the process's exit tears OpenSSL down."""
    key = _setting()
    future, mine = _claim(key)
    if mine:
        threading.Thread(target=_load, args=(future, key), name="tls-warm").start()


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
    except BaseException as exc:  # a bad SSL_CERT_FILE: every waiter is told; a later call tries again
        with _lock:
            del _loaded[key]
        future.set_exception(exc)
        return
    future.set_result(ctx)
