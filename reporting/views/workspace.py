"""Reporting pages: workspace (being written)."""

urlpatterns: list = []
