"""Reporting pages: center (being written)."""

urlpatterns: list = []
