"""`python -m core`: the command line of the embedded application."""

from core.tools.cli import main

raise SystemExit(main())
