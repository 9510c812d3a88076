"""Reporting pages: critical (being written)."""

urlpatterns: list = []
