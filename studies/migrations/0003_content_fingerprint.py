"""The content fingerprint (Instance.content_sha256): the data set after the File Meta Information.

Existing instances get theirs computed from their stored files, in batches of 500 with a line of
progress each (committed batch by batch, so an interrupted run resumes where it stopped); a file that cannot be read keeps "" (a resend is then compared element by element).
"""

import logging

from django.core.files.storage import default_storage
from django.db import migrations, models

BATCH = 500
logger = logging.getLogger(__name__)


def compute_fingerprints(apps, schema_editor):
    from studies.dicom import content_digest

    Instance = apps.get_model("studies", "Instance")
    todo = Instance.objects.filter(content_sha256="").order_by("pk")
    total = todo.count()
    if not total:
        return
    done, last_pk = 0, 0
    while True:
        rows = list(todo.filter(pk__gt=last_pk).values_list("pk", "storage_key")[:BATCH])
        if not rows:
            break
        updates = []
        for pk, key in rows:
            try:
                with default_storage.open(key, "rb") as fh:
                    updates.append(Instance(pk=pk, content_sha256=content_digest(fh)))
            except OSError:
                logger.warning("content fingerprint: %s could not be read; left empty", key)
        Instance.objects.bulk_update(updates, ["content_sha256"])
        done += len(rows)
        last_pk = rows[-1][0]
        print(f"  content fingerprints: {done}/{total} instances")  # noqa: T201 - migration progress


class Migration(migrations.Migration):
    atomic = False  # each batch commits on its own: a long backfill keeps its progress if interrupted

    dependencies = [
        ("studies", "0002_grant_kind_emergency"),
    ]

    operations = [
        migrations.AddField(
            model_name="instance",
            name="content_sha256",
            field=models.CharField(blank=True, default="", max_length=64),
        ),
        migrations.RunPython(compute_fingerprints, migrations.RunPython.noop, elidable=True),
    ]
