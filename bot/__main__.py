"""`python -m bot` is `upgradebot`."""

import sys

from bot.cli import main

sys.exit(main())
