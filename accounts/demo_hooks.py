"""How higher layers add to the demo world without accounts importing them.

``load_demo`` (in accounts, the bottom domain layer) builds users and organizations, then calls the
loaders that higher apps registered at start-up (design.md: "a hook that the higher layer
registered"). studies registers its demo studies from ``StudiesConfig.ready``.
"""

from __future__ import annotations

from collections.abc import Callable

_LOADERS: dict[str, Callable] = {}


def register_demo_loader(name: str, loader: Callable) -> None:
    _LOADERS[name] = loader


def demo_loader(name: str) -> Callable | None:
    return _LOADERS.get(name)
