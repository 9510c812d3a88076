"""How higher layers add to the demo world without accounts importing them.

``load_demo`` (in accounts, the bottom domain layer) builds users and organizations, then calls the
loaders that higher apps registered at start-up (design.md: "a hook that the higher layer
registered"). studies registers its demo studies from ``StudiesConfig.ready``.

An app may register several loaders: they run in the order registered (an app's ``ready`` lists them in
order, so the order reads in one place). Each gets what ``load_demo`` passes to the app's loader, plus
``report=`` the result of the loader before it when that one returned something: the marketplace's demo
returns its report and the RIS and coverage demos add to it.

A loader may be registered by its dotted path, imported only when ``load_demo`` asks for it: the demo
modules import pydicom and its codecs (about two seconds), which no other ``manage.py`` command needs.
"""

from __future__ import annotations

from collections.abc import Callable

from django.utils.module_loading import import_string

_LOADERS: dict[str, list[Callable | str]] = {}


def register_demo_loader(name: str, loader: Callable | str) -> None:
    """Add ``loader`` after the app's loaders registered so far (registering the same one again adds nothing).
    ``loader``: the function, or its dotted path ("studies.demo.load_demo_studies") to import when used."""
    loaders = _LOADERS.setdefault(name, [])
    if loader not in loaders:
        loaders.append(loader)


def demo_loaders(name: str) -> list[Callable]:
    """The app's loaders in order, imported (a module already imported costs a dictionary lookup)."""
    return [import_string(loader) if isinstance(loader, str) else loader for loader in _LOADERS.get(name, [])]


def demo_loader(name: str) -> Callable | None:
    """One callable running the app's loaders in order (None when the app registered none); it returns the last
    result a loader returned."""
    loaders = demo_loaders(name)
    if not loaders:
        return None
    if len(loaders) == 1:
        return loaders[0]

    def run_in_order(*args, **kwargs):
        result = None
        for loader in loaders:
            returned = loader(*args, **kwargs)
            if returned is not None:
                result = kwargs["report"] = returned
        return result

    return run_in_order
