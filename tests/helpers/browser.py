"""A real headless Chromium (Debian's package) driven over the DevTools protocol on a pipe.

Enough of CDP to open a page, wait for its load event, evaluate expressions, and collect
what a person would call errors: uncaught exceptions, `console.error`, and browser log
entries at level error (a blocked request, a CSP violation), plus every URL the page
requested. `--remote-debugging-pipe` speaks NUL-terminated JSON on fds 3 (in) and 4 (out).

One browser per test process (started on the first page, closed at the end of the session:
conftest), since starting Chromium costs about a second; each page opens in a browser
context of its own, which shares no storage, cache or window with any other page, and is
disposed of with it.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import subprocess
import tempfile
import threading
from dataclasses import dataclass, field
from typing import Any


def chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


@dataclass
class PageRun:
    values: dict[str, Any]
    errors: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)


class _Pipe:
    def __init__(self, write_fd: int, read_fd: int) -> None:
        self._w = os.fdopen(write_fd, "wb", buffering=0)
        self._r = os.fdopen(read_fd, "rb", buffering=0)
        self._buf = b""
        self._next = 0
        self.events: list[dict[str, Any]] = []
        self._answers: dict[int, dict[str, Any]] = {}
        self._cond = threading.Condition()
        threading.Thread(target=self._reader, daemon=True).start()

    def _reader(self) -> None:
        while True:
            chunk = self._r.read(65536)
            if not chunk:
                with self._cond:
                    self._cond.notify_all()
                return
            self._buf += chunk
            while b"\0" in self._buf:
                raw, self._buf = self._buf.split(b"\0", 1)
                msg = json.loads(raw)
                with self._cond:
                    if "id" in msg:
                        self._answers[msg["id"]] = msg
                    else:
                        self.events.append(msg)
                    self._cond.notify_all()

    def send(
        self, method: str, params: dict[str, Any] | None = None, session: str | None = None
    ) -> dict[str, Any]:
        self._next += 1
        ident = self._next
        msg: dict[str, Any] = {"id": ident, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        self._w.write(json.dumps(msg).encode() + b"\0")
        with self._cond:
            if not self._cond.wait_for(lambda: ident in self._answers, timeout=60):
                raise TimeoutError(f"no answer to {method}")
            answer = self._answers.pop(ident)
        if "error" in answer:
            raise RuntimeError(f"{method}: {answer['error']}")
        return answer.get("result", {})  # type: ignore[no-any-return]

    def session_events(self, session: str) -> list[dict[str, Any]]:
        with self._cond:
            return [e for e in self.events if e.get("sessionId") == session]

    def forget(self, session: str) -> None:
        with self._cond:
            self.events = [e for e in self.events if e.get("sessionId") != session]

    def wait_event(self, method: str, session: str, timeout: float = 60) -> dict[str, Any]:
        def seen() -> dict[str, Any] | None:
            return next(
                (e for e in self.events if e["method"] == method and e.get("sessionId") == session), None
            )

        with self._cond:
            if not self._cond.wait_for(lambda: seen() is not None, timeout=timeout):
                raise TimeoutError(f"no {method} event")
            event = seen()
            assert event is not None
            return event


class Browser:
    """A headless Chromium on a pipe; `page` opens each page in a fresh browser context."""

    def __init__(self, width: int = 1280, height: int = 1600) -> None:
        exe = chromium()
        assert exe is not None
        to_browser_r, to_browser_w = os.pipe()
        from_browser_r, from_browser_w = os.pipe()
        # Above 10, so that the shell's `3<&A 4>&B` cannot clobber one with the other.
        a, b = (fcntl.fcntl(fd, fcntl.F_DUPFD, 10) for fd in (to_browser_r, from_browser_w))
        for fd in (to_browser_r, from_browser_w):
            os.close(fd)
        self._profile = tempfile.mkdtemp(prefix="reconcile-chromium-")
        args = [
            exe,
            "--headless",
            "--no-sandbox",  # CI runs as root
            "--disable-gpu",
            "--remote-debugging-pipe",
            f"--user-data-dir={self._profile}",
            f"--window-size={width},{height}",
            "about:blank",
        ]
        self._proc = subprocess.Popen(
            ["bash", "-c", f'exec "$@" 3<&{a} 4>&{b} {a}<&- {b}>&-', "bash", *args],
            pass_fds=(a, b),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        os.close(a)
        os.close(b)
        self._pipe = _Pipe(to_browser_w, from_browser_r)

    def alive(self) -> bool:
        return self._proc.poll() is None

    def page(self, url: str, expressions: dict[str, str]) -> PageRun:
        """Load `url` in a new browser context, then evaluate each expression (by name)."""
        pipe = self._pipe
        context = pipe.send("Target.createBrowserContext", {"disposeOnDetach": True})["browserContextId"]
        session = ""
        try:
            target = pipe.send("Target.createTarget", {"url": "about:blank", "browserContextId": context})
            session = pipe.send("Target.attachToTarget", {"targetId": target["targetId"], "flatten": True})[
                "sessionId"
            ]
            for domain in ("Runtime", "Log", "Page", "Network"):
                pipe.send(f"{domain}.enable", session=session)
            pipe.send("Page.navigate", {"url": url}, session=session)
            pipe.wait_event("Page.loadEventFired", session)
            values = {}
            for name, expr in expressions.items():
                got = pipe.send(
                    "Runtime.evaluate", {"expression": expr, "returnByValue": True}, session=session
                )
                values[name] = got.get("result", {}).get("value")
            run = PageRun(values)
            for e in pipe.session_events(session):
                p = e.get("params", {})
                if e["method"] == "Runtime.exceptionThrown":
                    run.errors.append(json.dumps(p.get("exceptionDetails", {}))[:500])
                elif e["method"] == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
                    run.errors.append(json.dumps(p.get("args", []))[:500])
                elif e["method"] == "Log.entryAdded" and p.get("entry", {}).get("level") == "error":
                    run.errors.append(p["entry"].get("text", "")[:500])
                elif e["method"] == "Network.requestWillBeSent":
                    run.requests.append(p.get("request", {}).get("url", ""))
            return run
        finally:
            pipe.send("Target.disposeBrowserContext", {"browserContextId": context})
            pipe.forget(session)

    def close(self) -> None:
        try:
            with contextlib.suppress(TimeoutError, RuntimeError, OSError):
                self._pipe.send("Browser.close")
        finally:
            self._proc.kill()
            self._proc.wait(timeout=30)
            shutil.rmtree(self._profile, ignore_errors=True)


_shared: Browser | None = None


def open_page(url: str, expressions: dict[str, str]) -> PageRun:
    """Load `url` in a fresh browser context of this process's Chromium, then evaluate each
    expression (by name). A browser that failed is closed, and the next page starts another."""
    global _shared
    if _shared is None or not _shared.alive():
        _shared = Browser()
    try:
        return _shared.page(url, expressions)
    except BaseException:
        close_shared()
        raise


def close_shared() -> None:
    """Close this process's browser, if a page started one (conftest, at the end of the session)."""
    global _shared
    if _shared is not None:
        browser, _shared = _shared, None
        browser.close()
