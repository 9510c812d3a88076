"""Hooks a higher layer registers at start-up to hear of the study store's facts (design.md: a lower layer
never imports a higher one). ``on_studies_received``: images were stored (any door); the callbacks run after
the commit that stored them, with the organization and the studies touched, and must be quick (a STOW-RS
request waits for them): look, and hand longer work to a task.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from django.db import transaction

logger = logging.getLogger(__name__)
StudiesReceived = Callable[..., None]  # (*, organization_id: int, study_ids: list[int], source: str) -> None
_received: list[StudiesReceived] = []


def on_studies_received(callback: StudiesReceived) -> StudiesReceived:
    """Register ``callback`` (an app's ``ready()``); registering the same one twice keeps one."""
    if callback not in _received:
        _received.append(callback)
    return callback


def studies_received(*, organization_id: int, study_ids: list[int], source: str) -> None:
    """Tell the registered callbacks, after the commit, that these studies received images."""
    if not _received or not study_ids:
        return

    def run() -> None:
        for callback in list(_received):
            try:
                callback(organization_id=organization_id, study_ids=study_ids, source=source)
            except Exception:  # noqa: BLE001 - the images are stored; a listener's failure must not undo that
                logger.exception("a studies-received hook failed for studies %s", study_ids)

    transaction.on_commit(run)
