"""`python -m app.cli`: the `signals` command."""

import sys

from app.cli.main import main

sys.exit(main())
