"""django-filter sets for the accounts API. They narrow an already actor-scoped queryset, never widen it."""

from __future__ import annotations

import django_filters
from django.db.models import Q, QuerySet
from django.utils import timezone

from accounts.models import Invitation
from accounts.serializers import INVITATION_STATUSES


class InvitationFilter(django_filters.FilterSet):
    """``?status=pending|accepted|revoked|expired`` and ``?email=`` (case-insensitive, exact)."""

    status = django_filters.ChoiceFilter(choices=INVITATION_STATUSES, method="filter_status")
    email = django_filters.CharFilter(field_name="email", lookup_expr="iexact")

    class Meta:
        model = Invitation
        fields = ["status", "email"]

    def filter_status(self, queryset: QuerySet[Invitation], name: str, value: str) -> QuerySet[Invitation]:
        # The same rules as Invitation.status, written as a query.
        now = timezone.now()
        open_ = Q(accepted_at__isnull=True, revoked_at__isnull=True)
        condition = {
            "accepted": Q(accepted_at__isnull=False),
            "revoked": Q(accepted_at__isnull=True, revoked_at__isnull=False),
            "expired": open_ & Q(expires_at__lte=now),
            "pending": open_ & Q(expires_at__gt=now),
        }[value]
        return queryset.filter(condition)
