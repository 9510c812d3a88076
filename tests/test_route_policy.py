"""Deny by default: every route of the URL configuration has a declared access rule."""

import importlib

from django.urls import URLPattern, URLResolver, get_resolver

from accounts import policy as accounts_policy

APPS_WITH_ROUTES = ["core", "accounts", "studies", "marketplace", "reporting", "billing"]
DECLARED = {}
for _app in APPS_WITH_ROUTES:
    DECLARED.update(importlib.import_module(f"{_app}.policy").ROUTES)


def _walk(patterns, namespace=""):
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            ns = f"{namespace}{pattern.namespace}:" if pattern.namespace else namespace
            yield from _walk(pattern.url_patterns, ns)
        elif isinstance(pattern, URLPattern):
            yield (f"{namespace}{pattern.name}" if pattern.name else None), namespace, str(pattern.pattern)


def all_routes():
    return list(_walk(get_resolver().url_patterns))


def test_every_route_has_a_name_and_a_declared_access_rule():
    delegated = tuple(accounts_policy.DELEGATED_ROUTE_PREFIXES)
    undeclared = []
    for name, namespace, pattern in all_routes():
        if name is None:
            # Django admin's unnamed redirects live inside its (delegated) namespace.
            if not (namespace and namespace.startswith(delegated)):
                undeclared.append(f"unnamed route {pattern!r}")
        elif name not in DECLARED and not name.startswith(delegated):
            undeclared.append(name)
    assert undeclared == [], f"routes without an access rule in a policy.ROUTES: {undeclared}"


def test_no_declaration_names_a_route_that_does_not_exist():
    names = {name for name, _, _ in all_routes()}
    assert set(DECLARED) - names == set()
