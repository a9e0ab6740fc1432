"""Sphinx extension of the transferlib book.

* Offline math: copies MathJax 3, as vendored by the PyPI package ``django-static-mathjax`` (static
  files only, no Django needed), into ``_static/mathjax`` and points ``mathjax_path`` at it, so no
  page loads anything from a CDN.
* Each script once per page (see ``_drop_duplicate_scripts``).
* One jupyter-cache per scale: the scale comes from ``$TRANSFERLIB_SCALE`` (default ``"book"``), is a
  Sphinx config value that forces a full re-read when it changes, and names the execution cache
  folder. Outputs executed at one scale are never served for another.
* Per-notebook code versions: jupyter-cache keys a notebook by its code cells and kernelspec. As the
  page is read, the kernelspec's display name gets the code version
  (:func:`transferlib.provenance.code_version`) of the transferlib modules the page imports, and
  of everything they import, and ``env-get-outdated`` marks a page outdated when that version
  changes even if its source did not. A page is therefore re-executed when its own code or a module
  it uses changes, and only then: editing the LEEP runner does not re-execute the NCE pages.
"""

from __future__ import annotations

import os
import re
import shutil
import time
from pathlib import Path

from sphinx.application import Sphinx
from sphinx.config import Config
from sphinx.environment import BuildEnvironment

# MathJax 3 with SVG output: the fonts are inside the script, so no font file is ever fetched
# (file:// pages cannot always load fonts). The folders hold components loaded on demand: TeX
# extensions (autoload), the context menu and its accessibility tools.
MATHJAX_FILES = ("tex-svg.js", "input", "ui", "a11y", "sre", "adaptors")
MATHJAX_PATH = "mathjax/tex-svg.js"


def vendored_mathjax() -> Path:
    """The ``es5`` folder of MathJax 3 in the installed PyPI package ``django-static-mathjax``."""
    import mathjax

    return Path(mathjax.__file__).resolve().parent / "static" / "mathjax" / "es5"


_CODE_CELL = re.compile(r"^```\{code-cell\}[^\n]*\n(.*?)^```", re.MULTILINE | re.DOTALL)
_DISPLAY_NAME = re.compile(r"^(  display_name: )(.*)$", re.MULTILINE)


def notebook_code_version(text: str) -> str | None:
    """Code version of the transferlib modules a MyST notebook imports (None: it imports none)."""
    from transferlib.provenance import code_version, imported_modules

    code = "\n".join(
        "\n".join(line for line in cell.splitlines() if not line.startswith((":", "%", "!")))
        for cell in _CODE_CELL.findall(text)
    )
    modules = imported_modules(code)
    return code_version(*sorted(modules)) if modules else None


def _is_notebook(text: str) -> bool:
    return text.startswith("---") and "kernelspec:" in text.split("\n---", 1)[0]


def _mark_code_version(app: Sphinx, docname: str, source: list[str]) -> None:
    text = source[0]
    if not _is_notebook(text):
        return
    version = notebook_code_version(text)
    _versions(app.env)[docname] = version
    if version is not None:
        source[0] = _DISPLAY_NAME.sub(rf"\g<1>\g<2> (transferlib {version})", text, count=1)


def _versions(env: BuildEnvironment) -> dict[str, str | None]:
    if not hasattr(env, "transferlib_code_versions"):
        env.transferlib_code_versions = {}
    return env.transferlib_code_versions


def _outdated_by_code(
    app: Sphinx, env: BuildEnvironment, added: set[str], changed: set[str], removed: set[str]
) -> list[str]:
    """Pages whose source is unchanged but whose library code changed: Sphinx would otherwise
    keep their old doctree and never ask the execution cache."""
    stale = []
    for docname, version in _versions(env).items():
        if docname in added | changed | removed:
            continue
        path = Path(env.doc2path(docname))
        if path.is_file() and notebook_code_version(path.read_text()) != version:
            stale.append(docname)
    return stale


def _purge(app: Sphinx, env: BuildEnvironment, docname: str) -> None:
    _versions(env).pop(docname, None)


def _merge(app: Sphinx, env: BuildEnvironment, docnames: set[str], other: BuildEnvironment) -> None:
    _versions(env).update({d: v for d, v in _versions(other).items() if d in docnames})


def _configure(app: Sphinx, config: Config) -> None:
    from transferlib.config import check_scale

    scale = check_scale(os.environ.get("TRANSFERLIB_SCALE", "book"))
    config.transferlib_scale = scale
    config.nb_execution_cache_path = str(
        Path(app.outdir).resolve().parent / ".jupyter_cache" / scale
    )
    config.mathjax_path = MATHJAX_PATH


def _copy_mathjax(app: Sphinx, exception: Exception | None) -> None:
    if exception is None and app.builder.format == "html":
        source, target = vendored_mathjax(), Path(app.outdir) / "_static" / "mathjax"
        target.mkdir(parents=True, exist_ok=True)
        for name in MATHJAX_FILES:
            if (source / name).is_dir():
                shutil.copytree(source / name, target / name, dirs_exist_ok=True)
            else:
                shutil.copy2(source / name, target / name)


def _drop_duplicate_scripts(
    app: Sphinx, pagename: str, templatename: str, context: dict, doctree: object
) -> None:
    # sphinx-thebe registers its inline configuration both with the app (filename "") and with the
    # builder (filename None), so the page declares `const THEBE_JS_URL` twice: a JS error.
    seen: set = set()
    unique: list = []
    for script in context.get("script_files", []):
        key = (script.filename or "", script.priority, tuple(sorted(script.attributes.items())))
        if key not in seen:
            seen.add(key)
            unique.append(script)
    context["script_files"] = unique


EXECUTED, FROM_CACHE = "executed in this build", "from the cache"
_EXEC_TABLE = "{nb-exec-table}"


def _start_clock(app: Sphinx) -> None:
    app.transferlib_build_started = time.time()


def _exec_tables_outdated(app: Sphinx, env, added, changed, removed) -> list[str]:
    """Re-read the pages with an execution table every build (their table is about this build)."""
    pages = []
    for docname in env.found_docs:
        path = Path(env.doc2path(docname))
        if path.suffix == ".md" and _EXEC_TABLE in path.read_text(encoding="utf-8"):
            pages.append(docname)
    return [p for p in pages if p not in added and p not in changed]


def execution_method(exec_data: dict, build_started: float) -> str:
    """Whether a notebook's outputs were computed in the build started at ``build_started``.

    myst-nb stamps an executed notebook with the time it ran and a notebook taken from the
    jupyter-cache with the time its cache record was made, so the stamp tells the two apart.
    """
    mtime = exec_data.get("mtime")
    return EXECUTED if mtime is not None and mtime >= build_started else FROM_CACHE


def _label_execution_methods(app: Sphinx, env) -> None:
    started = getattr(app, "transferlib_build_started", time.time())
    for data in getattr(env, "nb_metadata", {}).values():
        exec_data = data.get("exec_data")
        if exec_data:
            exec_data["method"] = execution_method(exec_data, started)


def setup(app: Sphinx) -> dict:
    app.add_config_value("transferlib_scale", "book", "env")
    app.connect("builder-inited", _start_clock)
    app.connect("env-get-outdated", _exec_tables_outdated)
    app.connect("env-updated", _label_execution_methods)
    app.connect("config-inited", _configure)
    app.connect("source-read", _mark_code_version)
    app.connect("env-get-outdated", _outdated_by_code)
    app.connect("env-purge-doc", _purge)
    app.connect("env-merge-info", _merge)
    app.connect("html-page-context", _drop_duplicate_scripts)
    app.connect("build-finished", _copy_mathjax)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
