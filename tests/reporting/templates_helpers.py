"""The platform's seeded templates in a test's database.

Migration 0003 writes them, but a transactional test (the browser tests, for one) empties every table
when it ends, and what migrations wrote is gone for the tests after it: the tests that rely on the
seed write it again through the migration's own function (idempotent by name).
"""

from __future__ import annotations

import importlib

from django.apps import apps

seed_migration = importlib.import_module("reporting.migrations.0003_seed_templates")


def seed_platform_templates() -> None:
    seed_migration.seed(apps, None)
