"""`python -m traceglider` runs the command line."""

from traceglider.cli import entry

raise SystemExit(entry())
