"""``python -m widthprune.cli``: the ``widthprune`` command."""

import sys

from .main import main

sys.exit(main())
