"""PostgreSQL: the access log refuses UPDATE and DELETE (datapolicy.md, "Access log").

The one UPDATE allowed is the one Django issues when a user account is erased
(``AccessLog.user`` is SET_NULL): ``user_id`` becomes NULL and nothing else changes; the
``username`` column keeps who it was. TRUNCATE is not guarded by a trigger (test
databases are flushed with it); the application never issues it, and in production the
application's database role should not own the table (see docs/datapolicy.md).
"""

from django.db import migrations

FORWARD = """
CREATE OR REPLACE FUNCTION datapolicy_accesslog_append_only() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'UPDATE'
       AND NEW.user_id IS NULL AND OLD.user_id IS NOT NULL
       AND (to_jsonb(NEW) - 'user_id') = (to_jsonb(OLD) - 'user_id') THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'datapolicy_accesslog is append-only (% refused)', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;
DROP TRIGGER IF EXISTS datapolicy_accesslog_append_only ON datapolicy_accesslog;
CREATE TRIGGER datapolicy_accesslog_append_only
    BEFORE UPDATE OR DELETE ON datapolicy_accesslog
    FOR EACH ROW EXECUTE FUNCTION datapolicy_accesslog_append_only();
"""

BACKWARD = """
DROP TRIGGER IF EXISTS datapolicy_accesslog_append_only ON datapolicy_accesslog;
DROP FUNCTION IF EXISTS datapolicy_accesslog_append_only();
"""


def forward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(FORWARD, params=None)


def backward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(BACKWARD, params=None)


class Migration(migrations.Migration):
    dependencies = [("datapolicy", "0001_initial")]

    operations = [migrations.RunPython(forward, backward)]
