"""Delivery services: sources (`sources`), storing imported records (`ingest`), and the metrics."""
