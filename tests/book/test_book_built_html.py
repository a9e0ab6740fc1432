"""Checks of the built HTML book: internal links, no external resources, and (marker ``browser``)
pages opened in headless Chromium with networking disabled.

The book is looked for in ``$TRANSFERLIB_BOOK_HTML``, else ``_build/smoke/_build/html`` (CI's smoke
build), else ``_build/html`` (``make book``); the tests skip when none is built, and fail instead
when ``$TRANSFERLIB_BOOK_HTML`` names a folder that does not exist. ``TRANSFERLIB_REQUIRE_BROWSER=1``
turns the skip for a missing Chromium into a failure (CI sets it once it installed Chromium), and
``TRANSFERLIB_SCREENSHOTS=folder`` saves a screenshot of every page.
"""

from __future__ import annotations

import os
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest
from conftest import REPO_ROOT
from headless_chromium import HeadlessChromium, find_chromium

SKIPPED_PAGES = {"genindex.html", "search.html"}


def _book_html() -> Path:
    configured = os.environ.get("TRANSFERLIB_BOOK_HTML")
    if configured:
        path = Path(configured)
        if not (path / "index.html").is_file():
            pytest.fail(f"TRANSFERLIB_BOOK_HTML={configured} holds no built book (no index.html)")
        return path
    for candidate in (REPO_ROOT / "_build/smoke/_build/html", REPO_ROOT / "_build/html"):
        if (candidate / "index.html").is_file():
            return candidate
    pytest.skip("no built book; run `make book-smoke` or `make book` first")


@pytest.fixture(scope="module")
def book_html() -> Path:
    return _book_html()


def content_pages(root: Path) -> list[Path]:
    """Every HTML page of the book except the static assets and Sphinx's index and search pages."""
    return sorted(
        p for p in root.rglob("*.html")
        if "_static" not in p.relative_to(root).parts and "_sources" not in p.relative_to(root).parts
        and p.name not in SKIPPED_PAGES
    )


class _LinkCollector(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.ids: set[str] = set()
        self.links: list[tuple[str, str]] = []  # (tag, url)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if values.get("id"):
            self.ids.add(values["id"])
        if tag == "a" and values.get("name"):
            self.ids.add(values["name"])
        for attribute in ("href", "src"):
            if values.get(attribute):
                self.links.append((tag, values[attribute]))


def _parse(path: Path, cache: dict[Path, _LinkCollector]) -> _LinkCollector:
    if path not in cache:
        collector = _LinkCollector()
        collector.feed(path.read_text(encoding="utf-8", errors="replace"))
        cache[path] = collector
    return cache[path]


def test_internal_links_resolve(book_html: Path) -> None:
    parsed: dict[Path, _LinkCollector] = {}
    broken = []
    pages = content_pages(book_html)
    assert pages, f"no pages under {book_html}"
    for page in pages:
        for tag, url in _parse(page, parsed).links:
            parts = urlsplit(url)
            if parts.scheme or url.startswith(("//", "mailto:", "javascript:")):
                continue
            target = (page.parent / unquote(parts.path)).resolve() if parts.path else page
            if target.is_dir():
                target = target / "index.html"
            if not target.exists():
                broken.append(f"{page.relative_to(book_html)}: <{tag}> {url} (missing file)")
            elif (parts.fragment and target.suffix == ".html"
                  and unquote(parts.fragment) not in _parse(target, parsed).ids):
                broken.append(f"{page.relative_to(book_html)}: <{tag}> {url} (missing anchor)")
    assert not broken, "broken internal links:\n" + "\n".join(broken)


def test_pages_load_nothing_from_the_network(book_html: Path) -> None:
    # Links (<a href>) to the outside are fine; resources a page loads by itself are not.
    external = []
    for page in content_pages(book_html):
        for tag, url in _parse(page, {}).links:
            loads = tag in ("script", "img", "link", "iframe", "source")
            if loads and urlsplit(url).scheme in ("http", "https"):
                external.append(f"{page.relative_to(book_html)}: <{tag}> {url}")
    assert not external, "pages load resources from the network:\n" + "\n".join(external)


@pytest.mark.browser
def test_pages_render_offline_in_headless_chromium(book_html: Path) -> None:
    executable = find_chromium()
    if executable is None:
        if os.environ.get("TRANSFERLIB_REQUIRE_BROWSER") == "1":
            pytest.fail("TRANSFERLIB_REQUIRE_BROWSER=1 but no chromium is installed")
        pytest.skip("no chromium installed (Debian: apt-get install chromium)")
    screenshots = os.environ.get("TRANSFERLIB_SCREENSHOTS")
    if screenshots:
        Path(screenshots).mkdir(parents=True, exist_ok=True)
    problems, n_math_pages, n_images = [], 0, 0
    with HeadlessChromium(executable, offline=True) as browser:
        print(f"networking disabled with {browser.network}")
        for page in content_pages(book_html):
            name = page.relative_to(book_html).as_posix()
            shot = Path(screenshots) / (name.replace("/", "__") + ".png") if screenshots else None
            report = browser.load(page, screenshot=shot)
            problems += [f"{name}: console error: {e}" for e in report.console_errors]
            problems += [f"{name}: image did not load: {src}" for src in report.broken_images]
            if report.n_math_sources:
                n_math_pages += 1
                if report.n_math_rendered != report.n_math_sources or report.math_errors:
                    problems.append(
                        f"{name}: MathJax typeset {report.n_math_rendered} of {report.n_math_sources} "
                        f"formulas, {report.math_errors} errors"
                    )
            n_images += report.n_images - len(report.broken_images)
    assert not problems, "\n".join(problems)
    assert n_math_pages > 0, "no page with typeset math: is MathJax wired up?"
    assert n_images > 0, "no page with a loaded image: were the figures built?"
