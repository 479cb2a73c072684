"""Delivery commands, one module per part; truenorth/cli.py mounts them."""
