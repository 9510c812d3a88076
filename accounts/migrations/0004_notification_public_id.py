"""Notifications get a public UUID (URLs never carry sequential ids). Existing rows get one each."""

import uuid

from django.db import migrations, models


def fill_public_ids(apps, schema_editor):
    Notification = apps.get_model("accounts", "Notification")
    for notification in Notification.objects.filter(public_id__isnull=True).only("pk").iterator():
        Notification.objects.filter(pk=notification.pk).update(public_id=uuid.uuid4())


class Migration(migrations.Migration):
    dependencies = [("accounts", "0003_credentialing")]

    operations = [
        migrations.AddField(model_name="notification", name="public_id",
                            field=models.UUIDField(null=True, editable=False)),
        migrations.RunPython(fill_public_ids, migrations.RunPython.noop),
        migrations.AlterField(model_name="notification", name="public_id",
                              field=models.UUIDField(default=uuid.uuid4, unique=True, editable=False)),
    ]
