"""The moderators' admin for users and the follow graph.

A moderator's save writes only what the moderator changed on the page: every
field of the change form carries its value as the page showed it (Django's
``show_hidden_initial``), so ``form.changed_data`` is what was edited, not what
moved in the database since the page was loaded, and only those columns are
saved. Suspending and reinstating go through ``services.user_suspend`` and
``services.user_reinstate``. What the system maintains (counts, the newest
tweet id, the pulled-tweets flag, privacy) is shown read-only.

Only a superuser manages privileges: the password form, staff and superuser
status, groups and permissions are shown to superusers alone, and only they
may add users, change an account that is staff or superuser (their own
included) or change a group. Anyone else, such as a member of the "moderator" group (migration
0007), sees a page without those fields, gets a 403 from the password form,
and may view but not change a staff or superuser account.
"""
from django.contrib import admin, messages
from django.contrib.auth.admin import GroupAdmin as DjangoGroupAdmin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.auth.forms import AdminPasswordChangeForm, UserChangeForm
from django.contrib.auth.models import Group
from django.core.exceptions import PermissionDenied
from django.urls import reverse
from django.utils.html import format_html
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken

from core.admin import ReadOnlyAdmin

from . import services
from .models import Follow, User


class ChangeForm(UserChangeForm):
    """The user change form, each editable field also carrying the value the page showed."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for field in self.fields.values():
            if not field.disabled:  # (the password hash is disabled: never echoed into the page)
                field.show_hidden_initial = True


class PasswordChangeForm(AdminPasswordChangeForm):
    """The admin's password form, writing the password column alone (not the whole row it read)."""

    def save(self, commit=True):
        user = super().save(commit=False)
        if commit:
            user.save(update_fields=["password"])
        return user


PROFILE = ("display_name", "is_private", "tweets_link", "followers_count", "following_count", "last_tweet_id",
           "has_pulled_tweets")


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    list_display = ["id", "username", "display_name", "is_active", "is_private", "followers_count", "following_count"]
    search_fields = ["username", "display_name"]
    # is_private is read-only rather than routed through services.user_update: the
    # privacy of an account is its owner's choice (PATCH /v1/users/me), and going
    # public approves every pending follow request. No moderator should set that
    # off with a click, and a page loaded before the owner's change must not undo it.
    readonly_fields = ["is_private", "followers_count", "following_count", "last_tweet_id", "has_pulled_tweets",
                       "tweets_link", "last_login", "date_joined"]
    fieldsets = (*(DjangoUserAdmin.fieldsets or ()), ("Profile", {"fields": PROFILE}))
    # What a non-superuser sees and may change on a user's page: no password, no privileges.
    moderator_fieldsets = (
        (None, {"fields": ("username",)}),
        ("Personal info", {"fields": ("first_name", "last_name", "email")}),
        ("Status", {"fields": ("is_active",)}),
        ("Important dates", {"fields": ("last_login", "date_joined")}),
        ("Profile", {"fields": PROFILE}),
    )
    form = ChangeForm
    change_password_form = PasswordChangeForm
    actions = ["suspend", "reinstate"]

    def get_fieldsets(self, request, obj=None):
        if obj is not None and not request.user.is_superuser:
            return self.moderator_fieldsets
        return super().get_fieldsets(request, obj)

    def has_add_permission(self, request):
        # The add form sets a password: a superuser's business (users sign up through the API).
        return request.user.is_superuser and super().has_add_permission(request)

    def has_change_permission(self, request, obj=None):
        if obj is not None and not _may_manage(request.user, obj):
            return False
        return super().has_change_permission(request, obj)

    def user_change_password(self, request, id, form_url=""):
        if not request.user.is_superuser:
            raise PermissionDenied
        return super().user_change_password(request, id, form_url)

    @admin.display(description="Tweets")
    def tweets_link(self, obj):
        url = reverse("admin:tweets_tweet_changelist") + f"?author__id__exact={obj.id}"
        return format_html('<a href="{}">Tweets by {}</a>', url, obj.username)

    def save_model(self, request, obj, form, change):
        if not change:
            super().save_model(request, obj, form, change)
            return
        changed = set(form.changed_data)
        if "is_active" in changed:
            service = services.user_reinstate if obj.is_active else services.user_suspend
            service(user_id=obj.id, actor=request.user)
        # Everything else the moderator changed (many-to-many fields are saved by save_related),
        # onto the row as it is now, locked until commit.
        columns = sorted(f.name for f in User._meta.concrete_fields if f.name in changed and f.name != "is_active")
        if columns:
            user = User.objects.select_for_update(no_key=True).get(id=obj.id)
            for name in columns:
                setattr(user, name, getattr(obj, name))
            user.save(update_fields=columns)
            # A rename must show in timelines at once.
            services.author_cache_refresh_after_commit(user)

    def has_delete_permission(self, request, obj=None):
        return False  # suspend instead: tweets are permanent and counts must stay exact

    @admin.action(description="Suspend selected users", permissions=["change"])
    def suspend(self, request, queryset):
        self._moderate(request, queryset, services.user_suspend, "suspended")

    @admin.action(description="Reinstate selected users", permissions=["change"])
    def reinstate(self, request, queryset):
        self._moderate(request, queryset, services.user_reinstate, "reinstated")

    def _moderate(self, request, queryset, service, done: str) -> None:
        users = list(queryset.only("id", "username", "is_staff", "is_superuser"))
        refused = [user for user in users if not _may_manage(request.user, user)]
        changed = sum(service(user_id=user.id, actor=request.user) for user in users if user not in refused)
        self.message_user(request, f"{changed} user{'s' if changed != 1 else ''} {done}.", messages.SUCCESS)
        if refused:
            names = ", ".join(sorted(user.username for user in refused))
            self.message_user(request, f"Only a superuser may change a staff or superuser account: {names} "
                              "left as they were.", messages.WARNING)


def _may_manage(actor: User, user: User) -> bool:
    """Whether ``actor`` may change ``user`` at all: a staff or superuser account is a superuser's to change."""
    return actor.is_superuser or not (user.is_staff or user.is_superuser)


@admin.register(Follow)
class FollowAdmin(ReadOnlyAdmin):
    """Follows change through the API's services, which keep counts and timelines right."""

    list_display = ["follower", "followee", "state", "created_at"]
    list_filter = ["state"]
    raw_id_fields = ["follower", "followee"]


class GroupAdmin(DjangoGroupAdmin):
    """Groups carry permissions: only a superuser adds, changes or deletes one (anyone
    else given ``auth.change_group`` could grant their own group everything)."""

    def has_add_permission(self, request):
        return request.user.is_superuser

    def has_change_permission(self, request, obj=None):
        return request.user.is_superuser

    def has_delete_permission(self, request, obj=None):
        return request.user.is_superuser


if admin.site.is_registered(Group):
    admin.site.unregister(Group)
admin.site.register(Group, GroupAdmin)


# simplejwt's pages would show every refresh token in full, letting a moderator
# act as any user: tokens are revoked by suspending the user instead.
for model in (OutstandingToken, BlacklistedToken):
    if admin.site.is_registered(model):
        admin.site.unregister(model)
