"""``python -m afk``: the ``afk`` command line."""

import sys

from afk.cli.main import main

sys.exit(main())
