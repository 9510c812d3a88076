"""What has no domain of its own: the base model every app builds on."""

import uuid

from django.db import models


class TimeStampedModel(models.Model):
    """A row with a public UUID (used in URLs, never the sequential id) and UTC timestamps."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True
