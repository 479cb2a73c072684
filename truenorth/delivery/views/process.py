"""Delivery web pages: process (issue 12 part; empty until filled)."""

from __future__ import annotations

from django.urls import URLPattern

urlpatterns: list[URLPattern] = []
