"""A minimal Chrome DevTools Protocol client over ``--remote-debugging-pipe`` for the browser test.

Chromium runs headless with networking disabled: inside a new network namespace (``unshare -n``,
no interface but a down loopback) when that is permitted, otherwise with every request sent to a
proxy at a closed local port. Only the standard library is used.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "chrome")


def find_chromium() -> str | None:
    """Path of an installed Chromium/Chrome, or None."""
    for name in BROWSERS:
        path = shutil.which(name)
        if path:
            return path
    return None


def offline_prefix() -> tuple[list[str], str]:
    """Command prefix that disables networking, and a description of how."""
    unshare = shutil.which("unshare")
    if (
        unshare
        and subprocess.run([unshare, "-n", "true"], capture_output=True, check=False).returncode
        == 0
    ):
        return [unshare, "-n"], "unshare -n (new network namespace without any usable interface)"
    if (
        unshare
        and subprocess.run([unshare, "-rn", "true"], capture_output=True, check=False).returncode
        == 0
    ):
        return [
            unshare,
            "-rn",
        ], "unshare -rn (user and network namespace without any usable interface)"
    return [], "proxy 127.0.0.1:9 for every request (unshare not permitted)"


@dataclass
class PageReport:
    """What a page did when loaded: console errors, broken images and MathJax state.

    ``n_math_sources`` counts the formulas Sphinx wrote, ``n_math_rendered`` those MathJax typeset.
    """

    url: str
    console_errors: list[str] = field(default_factory=list)
    broken_images: list[str] = field(default_factory=list)
    n_images: int = 0
    n_math_sources: int = 0
    n_math_rendered: int = 0
    math_errors: int = 0
    uses_mathjax: bool = False
    page_width: int = 0
    viewport_width: int = 0
    wide_tables: list[str] = field(default_factory=list)
    overflowing_code: list[str] = field(default_factory=list)

    @property
    def scrolls_horizontally(self) -> bool:
        """Whether the page body is wider than the window (a horizontal scrollbar)."""
        return self.page_width > self.viewport_width


# Evaluated in the page after load. Sphinx wraps every formula in an element of class "math";
# MathJax 3 puts an <mjx-container> inside it once typeset, and marks failures with data-mjx-error.
_PAGE_STATE_JS = """
(() => {
  const images = Array.from(document.images);
  const formulas = Array.from(document.querySelectorAll('.math'));
  return JSON.stringify({
    n_images: images.length,
    broken_images: images.filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.src),
    uses_mathjax: !!document.querySelector('script[src*="mathjax/"]'),
    mathjax_ready: !!(window.MathJax && MathJax.startup && MathJax.startup.document &&
                      MathJax.startup.document.processed && MathJax.startup.document.processed.typeset),
    n_math_sources: formulas.length,
    n_math_rendered: formulas.filter(f => f.querySelector('mjx-container svg')).length,
    math_errors: document.querySelectorAll('[data-mjx-error], mjx-merror').length,
  });
})()
"""

# Layout at the window's width, after MathJax: the body's scroll width, tables wider than the
# content column that no scroll container holds, and code blocks whose lines run past their box.
_LAYOUT_JS = """
(() => {
  const article = document.querySelector('article.bd-article') || document.querySelector('main')
                  || document.body;
  const column = article.getBoundingClientRect();
  const scrollable = (el) => {
    for (let a = el.parentElement; a && a !== article; a = a.parentElement) {
      const overflow = getComputedStyle(a).overflowX;
      if ((overflow === 'auto' || overflow === 'scroll')
          && a.getBoundingClientRect().right <= column.right + 1) return true;
    }
    return false;
  };
  const label = (el) => {
    const figure = el.closest('[id]');
    const head = Array.from(el.querySelectorAll('th')).slice(0, 4).map(t => t.textContent.trim());
    return (figure ? '#' + figure.id + ' ' : '') + '[' + head.join(' | ') + ']';
  };
  const tables = Array.from(article.querySelectorAll('table')).filter(t =>
    t.offsetParent !== null && t.getBoundingClientRect().right > column.right + 1 && !scrollable(t));
  const code = Array.from(article.querySelectorAll('pre')).filter(p =>
    p.offsetParent !== null && p.scrollWidth > p.clientWidth + 1);
  return JSON.stringify({
    page_width: document.documentElement.scrollWidth,
    viewport_width: window.innerWidth,
    wide_tables: tables.map(label),
    overflowing_code: code.map(p => p.textContent.split('\\n')
      .reduce((a, b) => (b.length > a.length ? b : a), '').slice(0, 100)),
  });
})()
"""

_MATHJAX_DONE_JS = (
    "window.MathJax && MathJax.startup && MathJax.startup.promise"
    " ? MathJax.startup.promise.then(() => true) : false"
)


class HeadlessChromium:
    """Headless Chromium driven over a pipe; use as a context manager."""

    def __init__(
        self,
        executable: str,
        offline: bool = True,
        window_width: int = 1280,
        window_height: int = 1600,
    ) -> None:
        self.profile = tempfile.mkdtemp(prefix="transferlib-chromium-")
        prefix, self.network = offline_prefix() if offline else ([], "network allowed")
        args = [
            executable,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-dev-shm-usage",
            "--remote-debugging-pipe",
            f"--user-data-dir={self.profile}",
            f"--window-size={window_width},{window_height}",
        ]
        if offline and not prefix:
            args += ["--proxy-server=127.0.0.1:9", "--proxy-bypass-list=<-loopback>"]
        # Chromium reads commands from fd 3 and writes replies to fd 4.
        self._to_chrome_r, self._to_chrome_w = os.pipe()
        self._from_chrome_r, self._from_chrome_w = os.pipe()
        os.set_inheritable(self._to_chrome_r, True)
        os.set_inheritable(self._from_chrome_w, True)

        def connect_pipes() -> None:
            os.dup2(self._to_chrome_r, 3)
            os.dup2(self._from_chrome_w, 4)

        # preexec_fn is the only way to place the pipes at fds 3 and 4; the tests start no threads.
        self.process = subprocess.Popen(
            [*prefix, *args, "about:blank"],
            preexec_fn=connect_pipes,  # noqa: PLW1509
            pass_fds=(3, 4),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        os.close(self._to_chrome_r)
        os.close(self._from_chrome_w)
        self._buffer = b""
        self._next_id = 0
        self.events: list[dict[str, Any]] = []
        targets = self.call("Target.getTargets")["targetInfos"]
        page = next(t for t in targets if t["type"] == "page")
        self.session = self.call("Target.attachToTarget", targetId=page["targetId"], flatten=True)[
            "sessionId"
        ]
        for domain in ("Page", "Runtime", "Log"):
            self.call(f"{domain}.enable", session=self.session)

    def __enter__(self) -> HeadlessChromium:  # noqa: PYI034
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop the browser and remove its profile."""
        try:
            self.call("Browser.close", timeout=5)
        except (TimeoutError, OSError, RuntimeError):
            pass
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
        os.close(self._to_chrome_w)
        os.close(self._from_chrome_r)
        shutil.rmtree(self.profile, ignore_errors=True)

    def _read_message(self, deadline: float) -> dict[str, Any]:
        while b"\0" not in self._buffer:
            if time.monotonic() > deadline:
                raise TimeoutError("no reply from chromium")
            chunk = os.read(self._from_chrome_r, 1 << 16)
            if not chunk:
                raise RuntimeError("chromium closed the debugging pipe")
            self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(message)

    def call(
        self, method: str, session: str | None = None, timeout: float = 30, **params: Any
    ) -> dict:
        """Send one command and return its result; events received meanwhile are kept."""
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params}
        if session:
            message["sessionId"] = session
        os.write(self._to_chrome_w, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            reply = self._read_message(deadline)
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self.events.append(reply)

    def _wait_for_event(self, method: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not any(e.get("method") == method for e in self.events):
            self.events.append(self._read_message(deadline))

    def evaluate(self, expression: str, await_promise: bool = False) -> Any:
        """Value of a JavaScript expression in the page (awaited if it is a promise)."""
        result = self.call(
            "Runtime.evaluate",
            session=self.session,
            expression=expression,
            returnByValue=True,
            awaitPromise=await_promise,
        )
        return result["result"].get("value")

    def load(
        self, path: Path, math_timeout: float = 30, screenshot: Path | None = None
    ) -> PageReport:
        """Open a local HTML file, wait for load and for MathJax, and report what happened."""
        url = path.resolve().as_uri()
        self.events.clear()
        self.call("Page.navigate", session=self.session, url=url)
        self._wait_for_event("Page.loadEventFired", timeout=30)
        deadline = time.monotonic() + math_timeout
        while True:
            state = json.loads(self.evaluate(_PAGE_STATE_JS))
            if not state["uses_mathjax"] or time.monotonic() > deadline:
                break
            if self.evaluate(_MATHJAX_DONE_JS, await_promise=True):
                state = json.loads(self.evaluate(_PAGE_STATE_JS))
                break
            time.sleep(0.25)
        time.sleep(0.5)  # let late console messages (e.g. font loads) arrive
        layout = json.loads(self.evaluate(_LAYOUT_JS))
        if screenshot is not None:
            data = self.call("Page.captureScreenshot", session=self.session, format="png")["data"]
            screenshot.write_bytes(base64.b64decode(data))
        report = PageReport(
            url=url,
            **{
                k: state[k]
                for k in (
                    "broken_images",
                    "n_images",
                    "n_math_sources",
                    "n_math_rendered",
                    "math_errors",
                    "uses_mathjax",
                )
            },
            **layout,
        )
        for event in self.events:
            method, params = event.get("method"), event.get("params", {})
            if method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
                report.console_errors.append(
                    " ".join(
                        str(a.get("value", a.get("description"))) for a in params.get("args", [])
                    )
                )
            elif method == "Runtime.exceptionThrown":
                details = params.get("exceptionDetails", {})
                report.console_errors.append(
                    details.get("exception", {}).get("description")
                    or details.get("text", "exception")
                )
            elif method == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
                entry = params["entry"]
                report.console_errors.append(f"{entry.get('text')} {entry.get('url', '')}".strip())
        return report
