"""The platform's "Overread" and "Peer review (RADPEER)" templates (issue 16), from ``reporting.seed_templates``.

As 0007: only these two; going back leaves them in place (reports may point at them).
"""

import copy

from django.db import migrations

from reporting import seed_templates


def seed(apps, schema_editor):
    ReportTemplate = apps.get_model("reporting", "ReportTemplate")
    for definition in (seed_templates.OVERREAD, seed_templates.PEER_REVIEW):
        values = copy.deepcopy({key: definition[key] for key in ("modalities", "body_parts", "sections", "fields")})
        ReportTemplate.objects.update_or_create(owner=None, name=definition["name"],
                                                defaults={**values, "active": True})


class Migration(migrations.Migration):

    dependencies = [
        ("reporting", "0009_quality"),
    ]

    operations = [
        migrations.RunPython(seed, migrations.RunPython.noop),
    ]
