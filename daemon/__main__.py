"""`python -m daemon` is the `genred` command."""

import sys

from daemon.cli import main

sys.exit(main())
