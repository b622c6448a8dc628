from django.apps import AppConfig


class SocialConfig(AppConfig):
    name = "social"

    def ready(self) -> None:
        from . import receivers, signals

        signals.sessions_ended.connect(receivers.sessions_ended_revoke_refresh_tokens,
                                       dispatch_uid="social.sessions_ended_revoke_refresh_tokens")
