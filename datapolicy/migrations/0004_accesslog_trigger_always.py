"""PostgreSQL: the access log's append-only trigger fires in every replication role.

The bulk import switches per-row foreign-key triggers off with
``session_replication_role = replica`` (measures/bulkload.py); an ordinary trigger would
be off too. ``ENABLE ALWAYS`` keeps the access log append-only whatever the session sets.
"""

from django.db import migrations



def forward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(
            "ALTER TABLE datapolicy_accesslog ENABLE ALWAYS TRIGGER "
            "datapolicy_accesslog_append_only",
            params=None,
        )


def backward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(
            "ALTER TABLE datapolicy_accesslog ENABLE TRIGGER datapolicy_accesslog_append_only",
            params=None,
        )


class Migration(migrations.Migration):
    dependencies = [("datapolicy", "0003_report_episode_fingerprint")]

    operations = [migrations.RunPython(forward, backward)]
