"""The access log: a keyed hash of an erased client's code, and the details of an
administrative change (review round 8; docs/datapolicy.md, "Access log").

Both columns are nullable without a default, so adding them does not rewrite the (big)
table. No existing row is filled in: the hash is written on the entry that records a
client's erasure, so entries of clients that still exist need none (their erasure entry
will carry it), and the append-only log is never updated. Clients erased before this
migration cannot get one (their code is gone); their log is still found by number.

The index is partial (only erasure entries carry a hash) and built CONCURRENTLY on
PostgreSQL, so that writing the log (every page that reads client data) is not blocked
while it is built; hence ``atomic = False``.
"""

from django.db import migrations, models


class AddIndexConcurrentlyOnPostgres(migrations.AddIndex):
    """``AddIndex``, without blocking writes on PostgreSQL (SQLite: a plain index)."""

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        model = to_state.apps.get_model(app_label, self.model_name)
        if self.allow_migrate_model(schema_editor.connection.alias, model):
            if schema_editor.connection.vendor == "postgresql":
                schema_editor.add_index(model, self.index, concurrently=True)
            else:
                schema_editor.add_index(model, self.index)

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        model = from_state.apps.get_model(app_label, self.model_name)
        if self.allow_migrate_model(schema_editor.connection.alias, model):
            if schema_editor.connection.vendor == "postgresql":
                schema_editor.remove_index(model, self.index, concurrently=True)
            else:
                schema_editor.remove_index(model, self.index)


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("datapolicy", "0005_reject_cpr_in_user_unit_organisation_names"),
    ]

    operations = [
        migrations.AddField(
            model_name="accesslog",
            name="client_code_hash",
            field=models.CharField(editable=False, max_length=64, null=True),
        ),
        migrations.AddField(
            model_name="accesslog",
            name="details",
            field=models.JSONField(editable=False, null=True),
        ),
        AddIndexConcurrentlyOnPostgres(
            model_name="accesslog",
            index=models.Index(
                condition=models.Q(("client_code_hash__isnull", False)),
                fields=["organisation", "client_code_hash"],
                name="accesslog_erased_client_code",
            ),
        ),
    ]
