from django.db import migrations

# The account-change log (0003) also records a new display name or username:
# cached tweets carry their author's name, and the replay drops them again a
# few seconds after the change, whatever a read filled meanwhile.
FUNCTION = """
CREATE OR REPLACE FUNCTION social_account_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        INSERT INTO social_accountchange (user_id) VALUES (OLD.id);
    ELSIF NEW.is_active IS DISTINCT FROM OLD.is_active OR NEW.is_private IS DISTINCT FROM OLD.is_private
          OR NEW.display_name IS DISTINCT FROM OLD.display_name OR NEW.username IS DISTINCT FROM OLD.username THEN
        INSERT INTO social_accountchange (user_id) VALUES (NEW.id);
    END IF;
    RETURN NULL;
END $$;
"""
PREVIOUS = """
CREATE OR REPLACE FUNCTION social_account_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        INSERT INTO social_accountchange (user_id) VALUES (OLD.id);
    ELSIF NEW.is_active IS DISTINCT FROM OLD.is_active OR NEW.is_private IS DISTINCT FROM OLD.is_private THEN
        INSERT INTO social_accountchange (user_id) VALUES (NEW.id);
    END IF;
    RETURN NULL;
END $$;
"""


class Migration(migrations.Migration):

    dependencies = [
        ('social', '0003_account_change'),
    ]

    operations = [
        migrations.RunSQL(FUNCTION, PREVIOUS),
    ]
