"""How higher layers add to the demo world without accounts importing them.

``load_demo`` (in accounts, the bottom domain layer) builds users and organizations, then calls the
loaders that higher apps registered at start-up (design.md: "a hook that the higher layer
registered"). studies registers its demo studies from ``StudiesConfig.ready``.

A loader may be registered by its dotted path, imported only when ``load_demo`` asks for it: the demo
modules import pydicom and its codecs (about two seconds), which no other ``manage.py`` command needs.
"""

from __future__ import annotations

from collections.abc import Callable

from django.utils.module_loading import import_string

_LOADERS: dict[str, Callable | str] = {}


def register_demo_loader(name: str, loader: Callable | str) -> None:
    """``loader``: the function, or its dotted path ("studies.demo.load_demo_studies") to import when used."""
    _LOADERS[name] = loader


def demo_loader(name: str) -> Callable | None:
    loader = _LOADERS.get(name)
    if isinstance(loader, str):
        loader = _LOADERS[name] = import_string(loader)
    return loader
