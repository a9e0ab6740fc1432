"""Sphinx extension of the transferlib book.

* Offline math: copies MathJax 3, as vendored by the PyPI package ``django-static-mathjax`` (static
  files only, no Django needed), into ``_static/mathjax`` and points ``mathjax_path`` at it, so no
  page loads anything from a CDN.
* Each script once per page (see ``_drop_duplicate_scripts``).
* One jupyter-cache per scale: the scale comes from ``$TRANSFERLIB_SCALE`` (default ``"book"``), is a
  Sphinx config value that forces a full re-read when it changes, and names the execution cache
  folder together with a fingerprint of the transferlib sources. Outputs executed at one scale, or
  with an older library, are therefore never served for another.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

from sphinx.application import Sphinx
from sphinx.config import Config

# MathJax 3 with SVG output: the fonts are inside the script, so no font file is ever fetched
# (file:// pages cannot always load fonts). The folders hold components loaded on demand: TeX
# extensions (autoload), the context menu and its accessibility tools.
MATHJAX_FILES = ("tex-svg.js", "input", "ui", "a11y", "sre", "adaptors")
MATHJAX_PATH = "mathjax/tex-svg.js"


def vendored_mathjax() -> Path:
    """The ``es5`` folder of MathJax 3 in the installed PyPI package ``django-static-mathjax``."""
    import mathjax

    return Path(mathjax.__file__).resolve().parent / "static" / "mathjax" / "es5"


def library_fingerprint() -> str:
    """Short content hash of the transferlib Python sources."""
    import transferlib

    root = Path(transferlib.__file__).resolve().parent
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        digest.update(path.relative_to(root).as_posix().encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


def _configure(app: Sphinx, config: Config) -> None:
    from transferlib.config import check_scale

    scale = check_scale(os.environ.get("TRANSFERLIB_SCALE", "book"))
    config.transferlib_scale = scale
    caches = Path(app.outdir).resolve().parent / ".jupyter_cache"
    cache = caches / f"{scale}-{library_fingerprint()}"
    for stale in caches.glob(f"{scale}-*"):
        if stale != cache:
            shutil.rmtree(stale)
    config.nb_execution_cache_path = str(cache)
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


def _drop_duplicate_scripts(app: Sphinx, pagename: str, templatename: str, context: dict,
                            doctree: object) -> None:
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


def setup(app: Sphinx) -> dict:
    app.add_config_value("transferlib_scale", "book", "env")
    app.connect("config-inited", _configure)
    app.connect("html-page-context", _drop_duplicate_scripts)
    app.connect("build-finished", _copy_mathjax)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
