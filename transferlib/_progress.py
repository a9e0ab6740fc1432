"""The one progress bar of transferlib: ``tqdm.auto`` without its ipywidgets warning.

In a Jupyter kernel without ipywidgets, ``tqdm.auto`` warns "IProgress not found" on import
and falls back to the text bar. The book deliberately has no ipywidgets (widget output needs
JavaScript from a CDN, which an offline book cannot load), so the text bar is the intended
one and the warning would only print a stderr box on every executed page.
"""

import warnings

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message="IProgress not found")
    from tqdm.auto import tqdm

__all__ = ["tqdm"]
