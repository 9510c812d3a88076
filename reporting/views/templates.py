"""Reporting pages: templates (being written)."""

urlpatterns: list = []
