"""The one progress bar of transferlib: ``tqdm.auto`` without its ipywidgets warning, and with
``TQDM_DISABLE`` authoritative.

In a Jupyter kernel without ipywidgets, ``tqdm.auto`` warns "IProgress not found" on import
and falls back to the text bar. The book deliberately has no ipywidgets (widget output needs
JavaScript from a CDN, which an offline book cannot load), so the text bar is the intended
one and the warning would only print a stderr box on every executed page.

tqdm reads ``TQDM_DISABLE`` only as the *default* of ``disable``, so a bar created with an explicit
``disable=False`` (every ``progress=True`` call in the library) ignores it. Book builds set
``TQDM_DISABLE=1`` to keep bars off the rendered pages; here it wins over the argument, while
terminal runs and interactive sessions, which do not set it, keep their bars.
"""

import os
import warnings

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message="IProgress not found")
    from tqdm.auto import tqdm as _tqdm

__all__ = ["bars_disabled", "tqdm"]


def bars_disabled() -> bool:
    """Whether ``TQDM_DISABLE`` is set to a true value (``1``, ``true``, ``yes``)."""
    return os.environ.get("TQDM_DISABLE", "").strip().lower() in ("1", "true", "yes")


class tqdm(_tqdm):
    """``tqdm.auto.tqdm`` that is disabled whenever ``TQDM_DISABLE`` is set."""

    def __init__(self, *args, disable: bool | None = False, **kwargs) -> None:
        super().__init__(*args, disable=True if bars_disabled() else disable, **kwargs)
