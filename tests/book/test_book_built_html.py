"""Checks of the built HTML book, as a reader sees it.

Without a browser: internal links resolve, pages load nothing from the network, no page carries
build debris (progress bars, tracebacks, stderr or warnings, raw reprs, unrounded floats), no
figure image appears twice on a page, and every image sits in a figure with a caption.

In headless Chromium (marker ``browser``), networking disabled, window 1280 px wide: every page
renders (no console errors, every image loads, MathJax typesets every formula), a screenshot of
every page is taken and no page body scrolls horizontally, no table is wider than the content
column unless a scroll container holds it, and no code line runs past its box.

The book is looked for in ``$TRANSFERLIB_BOOK_HTML``, else ``_build/smoke/_build/html`` (CI's smoke
build), else ``_build/html`` (``make book``); the tests skip when none is built, and fail instead
when ``$TRANSFERLIB_BOOK_HTML`` names a folder that does not exist. ``TRANSFERLIB_REQUIRE_BROWSER=1``
turns the skip for a missing Chromium into a failure (CI sets it once it installed Chromium), and
``TRANSFERLIB_SCREENSHOTS=folder`` keeps the screenshots (otherwise they go to a temporary folder).
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest
from conftest import REPO_ROOT
from headless_chromium import HeadlessChromium, PageReport, find_chromium

SKIPPED_PAGES = {"genindex.html", "search.html"}
WINDOW_WIDTH = 1280

# Text that must never reach a page: tqdm bars, tracebacks, warnings, dataclass reprs
# (``NCEPreset(data=...``) and floats printed with all their digits.
DEBRIS = {
    "progress bar": re.compile(r"\d\s*(?:it/s|s/it)\b|\|\s*\d+/\d+\s*\[|[█▏▎▍▌▋▊▉]"),
    "traceback": re.compile(r"Traceback \(most recent call last\)|^\w+Error: ", re.MULTILINE),
    "warning": re.compile(r"\b\w*Warning: "),
    "raw repr": re.compile(r"\b[A-Z]\w+\((?:[a-z_]+=)"),
    "unrounded float": re.compile(r"(?<![\w.])-?\d+\.\d{7,}"),
    "floating-point noise": re.compile(r"\d[eE]-(?:1[3-9]|[2-9]\d)\b"),
}
# A number in a table cell shows at most four decimals (or scientific notation).
UNROUNDED_CELL = re.compile(r"-?\d+\.\d{5,}")
# Output blocks of these classes are stderr streams and error reports.
DEBRIS_CLASSES = ("stderr", "traceback", "error")


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
        p
        for p in root.rglob("*.html")
        if "_static" not in p.relative_to(root).parts
        and "_sources" not in p.relative_to(root).parts
        and p.name not in SKIPPED_PAGES
    )


# ------------------------------------------------------------------------------------------------
# A minimal element tree (the standard library has a parser but no tree)
# ------------------------------------------------------------------------------------------------

_VOID = {
    "area",
    "base",
    "br",
    "col",
    "embed",
    "hr",
    "img",
    "input",
    "link",
    "meta",
    "source",
    "wbr",
}


@dataclass
class Element:
    tag: str
    attrs: dict[str, str]
    parent: Element | None = None
    children: list[Element] = field(default_factory=list)
    text: list[str] = field(default_factory=list)

    @property
    def classes(self) -> set[str]:
        return set(self.attrs.get("class", "").split())

    def iter(self, tag: str | None = None):
        """This element and its descendants (of ``tag``), in document order."""
        if tag is None or self.tag == tag:
            yield self
        for child in self.children:
            yield from child.iter(tag)

    def ancestors(self):
        node = self.parent
        while node is not None:
            yield node
            node = node.parent

    def text_content(self, separator: str = "") -> str:
        """The text of the element and its descendants, joined by ``separator`` per element."""
        parts = ["".join(self.text)] + [c.text_content(separator) for c in self.children]
        return separator.join(p for p in parts if p)


class _TreeBuilder(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Element("#document", {})
        self.current = self.root

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        node = Element(tag, {k: v or "" for k, v in attrs}, parent=self.current)
        self.current.children.append(node)
        if tag not in _VOID:
            self.current = node

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.current.children.append(Element(tag, {k: v or "" for k, v in attrs}, self.current))

    def handle_endtag(self, tag: str) -> None:
        node = self.current
        while node is not self.root and node.tag != tag:  # tolerate unclosed elements
            node = node.parent
        if node is not self.root:
            self.current = node.parent

    def handle_data(self, data: str) -> None:
        self.current.text.append(data)


_TREES: dict[Path, Element] = {}


def parse(path: Path) -> Element:
    if path not in _TREES:
        builder = _TreeBuilder()
        builder.feed(path.read_text(encoding="utf-8", errors="replace"))
        _TREES[path] = builder.root
    return _TREES[path]


def article(page: Path) -> Element:
    """The page's content column (what the reader reads: no navigation, no sidebars)."""
    root = parse(page)
    for node in root.iter("article"):
        if "bd-article" in node.classes:
            return node
    return next(root.iter("main"), root)


def _links(root: Element) -> list[tuple[str, str]]:
    return [
        (node.tag, node.attrs[attribute])
        for node in root.iter()
        for attribute in ("href", "src")
        if node.attrs.get(attribute)
    ]


def _ids(root: Element) -> set[str]:
    ids = {node.attrs["id"] for node in root.iter() if node.attrs.get("id")}
    return ids | {node.attrs["name"] for node in root.iter("a") if node.attrs.get("name")}


# ------------------------------------------------------------------------------------------------
# Static checks
# ------------------------------------------------------------------------------------------------


def test_internal_links_resolve(book_html: Path) -> None:
    broken = []
    pages = content_pages(book_html)
    assert pages, f"no pages under {book_html}"
    for page in pages:
        for tag, url in _links(parse(page)):
            parts = urlsplit(url)
            if parts.scheme or url.startswith(("//", "mailto:", "javascript:")):
                continue
            target = (page.parent / unquote(parts.path)).resolve() if parts.path else page
            if target.is_dir():
                target = target / "index.html"
            if not target.exists():
                broken.append(f"{page.relative_to(book_html)}: <{tag}> {url} (missing file)")
            elif (
                parts.fragment
                and target.suffix == ".html"
                and unquote(parts.fragment) not in _ids(parse(target))
            ):
                broken.append(f"{page.relative_to(book_html)}: <{tag}> {url} (missing anchor)")
    assert not broken, "broken internal links:\n" + "\n".join(broken)


def test_pages_load_nothing_from_the_network(book_html: Path) -> None:
    # Links (<a href>) to the outside are fine; resources a page loads by itself are not.
    external = []
    for page in content_pages(book_html):
        for tag, url in _links(parse(page)):
            loads = tag in ("script", "img", "link", "iframe", "source")
            if loads and urlsplit(url).scheme in ("http", "https"):
                external.append(f"{page.relative_to(book_html)}: <{tag}> {url}")
    assert not external, "pages load resources from the network:\n" + "\n".join(external)


def debris(page: Path) -> list[str]:
    """Build debris in the outputs of a page's executed cells."""
    found = []
    for node in article(page).iter("div"):
        if "cell_output" not in node.classes:
            continue
        for block in node.iter():
            bad = block.classes & set(DEBRIS_CLASSES)
            if bad and "output" in block.classes:
                found.append(f"{'/'.join(sorted(bad))} output: {block.text_content()[:80]!r}")
        for cell in node.iter("td"):
            if UNROUNDED_CELL.fullmatch(cell.text_content().strip()):
                found.append(f"unrounded table cell: {cell.text_content().strip()!r}")
                break
        text = node.text_content(separator="\n")
        for name, pattern in DEBRIS.items():
            match = pattern.search(text)
            if match:
                start = max(match.start() - 30, 0)
                found.append(f"{name}: {text[start : match.end() + 30]!r}")
    return found


def test_no_build_debris_in_pages(book_html: Path) -> None:
    problems = [
        f"{page.relative_to(book_html)}: {item}"
        for page in content_pages(book_html)
        for item in debris(page)
    ]
    assert not problems, "build debris on rendered pages:\n" + "\n".join(problems)


def _image_file(page: Path, src: str) -> Path | None:
    parts = urlsplit(src)
    if parts.scheme or src.startswith("data:"):
        return None
    path = (page.parent / unquote(parts.path)).resolve()
    return path if path.is_file() else None


NEGATIVE_ZERO = re.compile(r"(?<![\w.])[-−]0\.0+(?![\d.])")


def test_no_negative_zero_anywhere(book_html: Path) -> None:
    # A glued "-0.000" is a rounding artefact: the number is zero.
    found = [
        f"{page.relative_to(book_html)}: {match.group(0)!r} in "
        f"{text[max(match.start() - 40, 0) : match.end() + 20]!r}"
        for page in content_pages(book_html)
        for text in [article(page).text_content(separator=" ")]
        for match in NEGATIVE_ZERO.finditer(text)
    ]
    assert not found, "negative zeros on rendered pages:\n" + "\n".join(found)


def test_no_figure_image_appears_twice_on_a_page(book_html: Path) -> None:
    repeated = []
    for page in content_pages(book_html):
        seen: dict[str, str] = {}
        for image in article(page).iter("img"):
            path = _image_file(page, image.attrs.get("src", ""))
            if path is None:
                continue
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
            if digest in seen:
                repeated.append(f"{page.relative_to(book_html)}: {path.name} (= {seen[digest]})")
            seen.setdefault(digest, path.name)
    assert not repeated, "figure images shown more than once on a page:\n" + "\n".join(repeated)


def test_every_figure_has_a_caption(book_html: Path) -> None:
    uncaptioned = []
    for page in content_pages(book_html):
        for image in article(page).iter("img"):
            figure = next((a for a in image.ancestors() if a.tag == "figure"), None)
            caption = None if figure is None else next(figure.iter("figcaption"), None)
            if caption is None or not caption.text_content().strip():
                uncaptioned.append(f"{page.relative_to(book_html)}: {image.attrs.get('src')}")
    assert not uncaptioned, "images without a figure caption:\n" + "\n".join(uncaptioned)


def test_execution_status_says_how_each_notebook_was_made(book_html: Path) -> None:
    page = book_html / "book" / "execution_status.html"
    if not page.is_file():
        pytest.skip("this book has no execution-status page")
    tables = list(article(page).iter("table"))
    assert tables, "the execution-status page has no table"
    header = [cell.text_content().strip() for cell in tables[0].iter("th")]
    column = header.index("Method")
    rows = [list(row.iter("td")) for row in tables[0].iter("tr")]
    methods = {row[column].text_content().strip() for row in rows if len(row) > column}
    assert methods, "no notebook listed"
    assert methods <= {"executed in this build", "from the cache"}, methods


# ------------------------------------------------------------------------------------------------
# In headless Chromium at 1280 px
# ------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser_reports(book_html: Path, tmp_path_factory) -> dict[str, PageReport]:
    """Every page loaded once in headless Chromium (offline), with a screenshot of each."""
    executable = find_chromium()
    if executable is None:
        if os.environ.get("TRANSFERLIB_REQUIRE_BROWSER") == "1":
            pytest.fail("TRANSFERLIB_REQUIRE_BROWSER=1 but no chromium is installed")
        pytest.skip("no chromium installed (Debian: apt-get install chromium)")
    configured = os.environ.get("TRANSFERLIB_SCREENSHOTS")
    shots = Path(configured) if configured else tmp_path_factory.mktemp("screenshots")
    shots.mkdir(parents=True, exist_ok=True)
    reports = {}
    with HeadlessChromium(executable, offline=True, window_width=WINDOW_WIDTH) as browser:
        print(f"networking disabled with {browser.network}; screenshots in {shots}")
        for page in content_pages(book_html):
            name = page.relative_to(book_html).as_posix()
            reports[name] = browser.load(
                page, screenshot=shots / (name.replace("/", "__") + ".png")
            )
    return reports


@pytest.mark.browser
def test_pages_render_offline_in_headless_chromium(browser_reports: dict[str, PageReport]) -> None:
    problems, n_math_pages, n_images = [], 0, 0
    for name, report in browser_reports.items():
        problems += [f"{name}: console error: {e}" for e in report.console_errors]
        problems += [f"{name}: image did not load: {src}" for src in report.broken_images]
        if report.n_math_sources:
            n_math_pages += 1
            if report.n_math_rendered != report.n_math_sources or report.math_errors:
                problems.append(
                    f"{name}: MathJax typeset {report.n_math_rendered} of "
                    f"{report.n_math_sources} formulas, {report.math_errors} errors"
                )
        n_images += report.n_images - len(report.broken_images)
    assert not problems, "\n".join(problems)
    assert n_math_pages > 0, "no page with typeset math: is MathJax wired up?"
    assert n_images > 0, "no page with a loaded image: were the figures built?"


@pytest.mark.browser
def test_no_page_scrolls_horizontally_at_1280px(browser_reports: dict[str, PageReport]) -> None:
    assert all(r.viewport_width == WINDOW_WIDTH for r in browser_reports.values())
    wide = [
        f"{name}: body {r.page_width} px in a {r.viewport_width} px window"
        for name, r in browser_reports.items()
        if r.scrolls_horizontally
    ]
    assert not wide, "pages with a horizontal scrollbar:\n" + "\n".join(wide)


@pytest.mark.browser
def test_no_table_is_wider_than_the_content_column(browser_reports: dict[str, PageReport]) -> None:
    wide = [f"{name}: table {t}" for name, r in browser_reports.items() for t in r.wide_tables]
    assert not wide, "tables clipped at 1280 px (no scroll container):\n" + "\n".join(wide)


@pytest.mark.browser
def test_no_code_line_runs_past_its_box(browser_reports: dict[str, PageReport]) -> None:
    long = [
        f"{name}: {line!r}" for name, r in browser_reports.items() for line in r.overflowing_code
    ]
    assert not long, "code or text lines wider than their box at 1280 px:\n" + "\n".join(long)
