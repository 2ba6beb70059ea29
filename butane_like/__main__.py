"""``python -m butane_like``: the ``pine-transpile`` command."""

import sys

from .cli import main

sys.argv[0] = "pine-transpile"  # the usage text names the program by argv[0]
sys.exit(main())
