"""`python -m traceglider` runs the command line."""

from traceglider.cli import main

raise SystemExit(main())
