"""Delivery pages, one module per part; each lists its own `urlpatterns`."""
