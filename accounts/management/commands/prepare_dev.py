"""``bin/dev up``'s preparation in one process: apply the migrations, then load (or find complete) the demo world.

Two ``manage.py`` processes (``migrate``, then ``load_demo``) each paid Django's start-up and the imports the
demo needs (pydicom, hl7apy, fhir.resources, reportlab: ~2 s each); one process pays them once. The system
checks are left to ``runserver``, which runs them before it serves (``bin/dev up --no-serve`` skips them; CI
runs ``manage.py check`` on its own).
"""

from __future__ import annotations

from django.core.management import call_command
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Apply the migrations and load the demo world (what `bin/dev up` does before it serves)."
    requires_system_checks: list = []  # runserver runs them; see the module's docstring

    def handle(self, *args, **options):
        verbosity = options.get("verbosity", 1)
        call_command("migrate", interactive=False, verbosity=0, skip_checks=True)
        call_command("load_demo", skip_checks=True, verbosity=verbosity)
