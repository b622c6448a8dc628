"""The "moderator" group: what moderating needs in the admin, and nothing more.

Viewing users, follows and tweets; changing users (the admin's *Active* box and
its suspend and reinstate actions, which call ``services.user_suspend`` and
``user_reinstate``); deleting tweets (``tweets.services.tweet_delete``). Adding or
deleting users, editing tweets, media and tokens are not moderation. What a
member may change on a user's page is narrowed further by ``social.admin.UserAdmin``
(no password, staff or superuser status, groups or permissions; no superuser).

The permissions are made here if they are missing (on a fresh database Django
makes them only after every migration has run), and the group is given exactly
these, also if a group of that name existed before.
"""
from django.db import migrations

GROUP = "moderator"
# (app label, model, action): a model's default permission "<action>_<model>".
PERMISSIONS = [
    ("social", "user", "view"),
    ("social", "user", "change"),
    ("social", "follow", "view"),
    ("tweets", "tweet", "view"),
    ("tweets", "tweet", "delete"),
]


def moderator_group_create(apps, schema_editor):
    db = schema_editor.connection.alias
    ContentType = apps.get_model("contenttypes", "ContentType")
    Permission = apps.get_model("auth", "Permission")
    Group = apps.get_model("auth", "Group")
    permissions = []
    for app_label, model_name, action in PERMISSIONS:
        model = apps.get_model(app_label, model_name)
        content_type, _ = ContentType.objects.using(db).get_or_create(app_label=app_label, model=model_name)
        permission, _ = Permission.objects.using(db).get_or_create(
            content_type=content_type, codename=f"{action}_{model_name}",
            defaults={"name": f"Can {action} {model._meta.verbose_name_raw}"})
        permissions.append(permission)
    group, _ = Group.objects.using(db).get_or_create(name=GROUP)
    group.permissions.set(permissions)


def moderator_group_delete(apps, schema_editor):
    apps.get_model("auth", "Group").objects.using(schema_editor.connection.alias).filter(name=GROUP).delete()


class Migration(migrations.Migration):

    dependencies = [
        ("social", "0006_user_cache_version"),
        ("tweets", "0001_initial"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [
        migrations.RunPython(moderator_group_create, moderator_group_delete),
    ]
