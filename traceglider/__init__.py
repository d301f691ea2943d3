"""TraceGlider: privacy-first web analytics that lands as Parquet in your own storage."""

__version__ = "0.1.0"
