"""Engagement web pages, one module per part; each module lists its own `urlpatterns` (urls.py joins them)."""
