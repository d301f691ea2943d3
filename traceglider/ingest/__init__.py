"""Ingestion: parse a request once, run the enrichment pipeline, hand rows to a sink."""
