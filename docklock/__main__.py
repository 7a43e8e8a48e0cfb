"""Allows `python -m docklock`."""

from docklock.cli import main

raise SystemExit(main())
