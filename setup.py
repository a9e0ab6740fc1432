"""Build hook: ship the book's notebooks inside the package (everything else is in pyproject.toml).

The MyST notebooks live in ``notebooks/``, where the book's ``_toc.yml`` finds them. ``transferlib
list`` and ``transferlib run`` need them after a regular (non-editable) install too, so building
the package copies them to ``transferlib/notebooks/``. An editable install reads ``notebooks/``
from the checkout instead (see ``transferlib.cli.NOTEBOOKS_DIR``).
"""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

NOTEBOOKS = Path(__file__).resolve().parent / "notebooks"


class BuildPyWithNotebooks(build_py):
    """``build_py`` that also copies ``notebooks/*.md`` into the built package."""

    def run(self) -> None:
        super().run()
        if self.editable_mode:
            return
        target = Path(self.build_lib) / "transferlib" / "notebooks"
        target.mkdir(parents=True, exist_ok=True)
        for notebook in sorted(NOTEBOOKS.glob("*.md")):
            shutil.copy2(notebook, target / notebook.name)


setup(cmdclass={"build_py": BuildPyWithNotebooks})
