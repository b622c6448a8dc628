"""What the accounts app does when a user row is saved: a save that set a new password or
suspended the user (``User.save`` marks it ``ends_sessions``) ends every session of the user
in the same transaction (``services.sessions_end``). Connected in ``apps.SocialConfig.ready``."""
from . import services


def user_saved_end_sessions(sender, instance, created: bool, **kwargs) -> None:
    if getattr(instance, "ends_sessions", False):
        services.sessions_end(user_id=instance.pk)
