"""Report templates a center may name on its overflow rules (issue 18, item 3).

Templates belong to ``reporting``, which sits above the marketplace: reporting registers a provider here at
start-up (``reporting.apps``), and the marketplace asks it which templates a center may name. A rule keeps the
template's public id (and its name, for the rule's sentence); the posted read carries the id, and reporting's
automatic choice of the draft's template honours it.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable

from accounts.models import Organization

TemplateChoice = tuple[uuid.UUID, str]  # (public id, name)
_providers: list[Callable[[Organization], list[TemplateChoice]]] = []


def register_template_provider(provider: Callable[[Organization], list[TemplateChoice]]) -> None:
    """Reporting's ``ready()``: ``provider(center)`` lists the templates the center's reads may be written on."""
    if provider not in _providers:
        _providers.append(provider)


def templates_for(center: Organization) -> list[TemplateChoice]:
    """The templates a center may name on a rule, by name (none without a provider: no reporting installed)."""
    return sorted((choice for provider in _providers for choice in provider(center)), key=lambda c: (c[1], c[0]))
