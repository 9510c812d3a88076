"""Create an organization API key from the server console and print its secret once.

    python manage.py create_api_key --organization lakeside --name "PACS gateway" [--role technologist]

For integrations, gateways and scripts. The operator at the console is trusted (``actor=None``);
the creation is audited like any other.
"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from accounts import selectors, services
from accounts.models import Role
from core.errors import ApplicationError, NotFound


class Command(BaseCommand):
    help = "Create an organization API key and print its secret (shown once, never stored)."

    def add_arguments(self, parser):
        parser.add_argument("--organization", required=True, metavar="SLUG", help="The organization's slug.")
        parser.add_argument("--name", required=True, help="What the key is for, e.g. 'PACS gateway'.")
        parser.add_argument("--role", dest="roles", action="append", metavar="ROLE",
                            choices=sorted(services.ASSIGNABLE_KEY_ROLES),
                            help="A role for the key (repeat for several; default: technologist).")
        parser.add_argument("--reason", default="", help="Why the key is created (kept in the audit log).")

    def handle(self, *args, **options):
        slug = options["organization"]
        try:
            organization = selectors.organization_get_for_console(slug=slug)
        except NotFound as exc:
            raise CommandError(f'No organization has the slug "{slug}".') from exc
        try:
            key, secret = services.api_key_create(
                actor=None, organization=organization, name=options["name"],
                roles=options["roles"] or [Role.TECHNOLOGIST],
                reason=options["reason"] or "created with manage.py create_api_key")
        except ApplicationError as exc:
            raise CommandError(exc.message) from exc
        self.stdout.write(self.style.SUCCESS(
            f'Created API key "{key.name}" (prefix {key.prefix}) for {organization.name} '
            f"with role(s) {', '.join(key.roles)}."))
        self.stdout.write("The secret is shown this once and cannot be recovered; store it now:")
        self.stdout.write(f"API key: {secret}")
        self.stdout.write("Send it as the header  Authorization: Bearer <API key>")
