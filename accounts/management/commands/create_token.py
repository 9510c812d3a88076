"""Create a personal API token for a user from the server console and print its secret once.

    python manage.py create_token --user alice@example.test --name "nightly export" [--expires-in-days 90]

For scripts and integrations that act as one person (with that person's roles). The operator at the
console is trusted; the token is created through the same service as on the tokens page, and audited.
"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from accounts import policy, services
from accounts.models import User
from core.errors import ApplicationError


class Command(BaseCommand):
    help = "Create a personal API token for a user and print it (shown once, never stored)."

    def add_arguments(self, parser):
        parser.add_argument("--user", required=True, metavar="EMAIL", help="The user's email address.")
        parser.add_argument("--name", required=True, help="What the token is for, e.g. 'nightly export'.")
        parser.add_argument("--expires-in-days", type=int, default=None, metavar="DAYS",
                            help="Days until the token stops working (1 to 365; default: never).")

    def handle(self, *args, **options):
        email = options["user"].strip()
        user = User.objects.filter(email__iexact=email).first()
        if user is None:
            raise CommandError(f'No user has the email "{email}".')
        if not user.is_active:
            raise CommandError(f'The user "{user.email}" is deactivated: a token of theirs would not work.')
        try:
            token, secret = services.personal_token_create(actor=policy.actor_for_user(user), name=options["name"],
                                                           expires_in_days=options["expires_in_days"])
        except ApplicationError as exc:
            raise CommandError(exc.message) from exc
        expiry = f"expires {token.expires_at:%Y-%m-%d %H:%M} UTC" if token.expires_at else "does not expire"
        self.stdout.write(self.style.SUCCESS(
            f'Created personal API token "{token.name}" (prefix {token.prefix}) for {user.email}; it {expiry}.'))
        self.stdout.write("The token is shown this once and cannot be recovered; store it now:")
        self.stdout.write(f"Token: {secret}")
        self.stdout.write("Send it as the header  Authorization: Bearer <token>")
