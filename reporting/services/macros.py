"""A radiologist's own macros: short names typed as ``.name`` in the editor and expanded to their text.

Only the radiologist who owns a macro sees or changes it; anyone else's is not found. Names are
short slugs, unique per radiologist.
"""

from __future__ import annotations

import re

from django.db import transaction

from accounts.policy import Actor
from core.errors import ApplicationError, NotFound
from marketplace.services.offers import profile_of
from reporting import selectors
from reporting.models import Macro

NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,29}$")
MAX_TEXT = 4000
MAX_MACROS = 200


def _err(field: str, message: str) -> ApplicationError:
    return ApplicationError.for_field(field, message, code="invalid_macro")


def _clean(name, text) -> tuple[str, str]:
    name = (name or "").strip().lstrip(".").lower() if isinstance(name, str) else ""
    if not name:
        raise _err("name", "Enter a short name (it is typed as .name).")
    if not NAME.match(name):
        raise _err("name", "A name is up to 30 lower-case letters, digits, - and _, starting with a letter or digit.")
    text = text.replace("\r\n", "\n").strip() if isinstance(text, str) else ""
    if not text:
        raise _err("text", "Enter the text the macro inserts.")
    if "\x00" in text:
        raise _err("text", "Contains a NUL character.")
    if len(text) > MAX_TEXT:
        raise _err("text", f"At most {MAX_TEXT:,} characters (this has {len(text):,}).")
    return name, text


def macro_for_owner(*, actor: Actor, public_id) -> Macro:
    """One of the actor's own macros (anyone else's, or a missing one, is not found)."""
    macro = selectors.macros_of(actor).filter(public_id=public_id).first()
    if macro is None:
        raise NotFound("Macro not found.")
    return macro


@transaction.atomic
def macro_create(*, actor: Actor, name: str, text: str) -> Macro:
    """A radiologist adds a macro; a name they already use is refused."""
    profile = profile_of(actor)
    if profile is None:
        raise NotFound()
    name, text = _clean(name, text)
    if Macro.objects.filter(radiologist=profile, name=name).exists():
        raise _err("name", f"You already have a macro named .{name}.")
    if Macro.objects.filter(radiologist=profile).count() >= MAX_MACROS:
        raise _err("name", f"At most {MAX_MACROS} macros; delete one you no longer use.")
    return Macro.objects.create(radiologist=profile, name=name, text=text)


@transaction.atomic
def macro_update(*, actor: Actor, macro: Macro, name: str, text: str) -> Macro:
    """Rename a macro or change its text (the owner only)."""
    macro = macro_for_owner(actor=actor, public_id=macro.public_id)
    name, text = _clean(name, text)
    if Macro.objects.filter(radiologist_id=macro.radiologist_id, name=name).exclude(pk=macro.pk).exists():
        raise _err("name", f"You already have a macro named .{name}.")
    macro.name, macro.text = name, text
    macro.save(update_fields=["name", "text", "updated_at"])
    return macro


@transaction.atomic
def macro_delete(*, actor: Actor, macro: Macro) -> None:
    """Delete one of one's own macros."""
    macro_for_owner(actor=actor, public_id=macro.public_id).delete()
