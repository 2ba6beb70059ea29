"""``python -m pineinstall``: the ``pineinstall`` command."""

import sys

from .cli import main

sys.exit(main())
