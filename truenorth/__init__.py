"""TrueNorth: keep a whole organisation pointed at one goal and run products by evidence."""

__version__ = "0.1.0"
