"""How higher layers add a panel to the dashboard without accounts importing them.

An app registers a provider at start-up (``AppConfig.ready``); for each dashboard view, each provider
gets the actor and returns a ``DashboardPanel`` (a template and its context) or None when it has
nothing for that person. The marketplace shows offers and reads this way (design.md: "a hook that the
higher layer registered").
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(frozen=True)
class DashboardPanel:
    template: str
    context: dict = field(default_factory=dict)


_PROVIDERS: dict[str, Callable] = {}


def register_dashboard_panel(name: str, provider: Callable) -> None:
    _PROVIDERS[name] = provider


def dashboard_panels(actor) -> list[DashboardPanel]:
    """The panels the registered apps have for this actor, in registration order."""
    return [panel for provider in _PROVIDERS.values() if (panel := provider(actor)) is not None]
