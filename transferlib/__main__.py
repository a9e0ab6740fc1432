"""``python -m transferlib``: see :mod:`transferlib.cli`."""

import sys

from transferlib.cli import main

sys.exit(main())
