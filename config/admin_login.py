"""The admin's sign-in page, counted against the login limit (``core.throttling``):
the same per-IP and per-username counters as the API's logins and the Mastodon
sign-in page, checked before the form checks the password."""
from django.contrib import admin
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth import REDIRECT_FIELD_NAME
from django.template.response import TemplateResponse
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_protect

from core import throttling


class _RefusedForm(AdminAuthenticationForm):
    """An empty sign-in form showing why the last attempt was refused (a bound form
    would check the password to find its errors)."""

    def __init__(self, request, message: str):
        super().__init__(request)
        self.refusal = message

    def non_field_errors(self):
        return self.error_class([self.refusal], error_class="nonfield")


@never_cache
@csrf_protect
def login(request, extra_context=None):
    if request.method == "POST":
        def refuse(message: str, status: int):
            context = {**admin.site.each_context(request), "title": _("Log in"), "subtitle": None,
                       "app_path": request.get_full_path(), "form": _RefusedForm(request, message),
                       REDIRECT_FIELD_NAME: request.POST.get(REDIRECT_FIELD_NAME, ""),
                       "site_name": admin.site.site_header}
            return TemplateResponse(request, admin.site.login_template or "admin/login.html", context, status=status)

        refused = throttling.sign_in_form_refusal(request, refuse)
        if refused is not None:
            return refused
    return admin.site.login(request, extra_context)
