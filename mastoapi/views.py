"""The two HTML pages of the authorization-code grant: sign in, then consent.

The consent page is django-oauth-toolkit's own; it is told only how Mastodon
clients expect to be sent back: to the ``urn:ietf:wg:oauth:2.0:oob`` page that
shows the code for the user to paste, or to the app's registered redirect URI,
whatever its scheme (a phone app's ``myapp://``), as Mastodon allows. The
sign-in form is Django's, counted against the same login limit as the API's.

Every parameter of an authorization request is checked here before
django-oauth-toolkit sees it (``authorization_problem``), and a bad one is an
error page (400), never a redirect: with an unknown client or a redirect URI the
app did not register (or may no longer use) there is nowhere safe to send the
user (RFC 6749 §4.1.2.1); with any other bad parameter the page offers the app's
error redirect as a link to follow, so that no request sends a signed-in user
to an app's address without a click (RFC 9700 §4.11.2: the authorization server
is otherwise an open redirector for whoever registers an app).
"""
import re
from dataclasses import dataclass
from urllib.parse import parse_qs, urlencode, urlsplit

from django import forms
from django.contrib.auth import login
from django.contrib.auth import views as auth_views
from django.core.exceptions import ValidationError
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.generic import FormView
from oauth2_provider.http import OAuth2ResponseRedirect
from oauth2_provider.models import get_application_model
from oauth2_provider.views import AuthorizationView

from core import throttling
from social import services as social_services
from social.models import DISPLAY_NAME_MAX_LENGTH, USERNAME_PATTERN

from . import scopes as mastodon_scopes
from .oauth import registered_scopes
from .services import OOB, redirect_uri_problem

STATE_MAX_LENGTH = 2048
_PKCE_CHALLENGE = re.compile(r"[A-Za-z0-9._~-]{43,128}")  # RFC 7636 §4.2
_PARAMETERS = ("client_id", "redirect_uri", "response_type", "scope", "state", "code_challenge",
               "code_challenge_method")


@dataclass(frozen=True)
class AuthorizationProblem:
    error: str  # OAuth's code (RFC 6749 §4.1.2.1)
    description: str
    back: str | None = None  # the app's error redirect, offered as a link (None: nowhere safe)


def _error_redirect(redirect_uri: str, error: str, description: str, state: str | None) -> str | None:
    if redirect_uri == OOB:
        return None
    query = urlencode({"error": error, "error_description": description, **({"state": state} if state else {})})
    return f"{redirect_uri}{'&' if urlsplit(redirect_uri).query else '?'}{query}"


def authorization_problem(params) -> AuthorizationProblem | None:
    """What is wrong with an authorization request's parameters (a query's, or the consent
    form's, ``QueryDict``), or None: the client is registered, the redirect URI is one it
    registered and may use, ``response_type`` is ``code``, the scopes are its own, PKCE (when
    sent) is S256 with a well-formed challenge, ``state`` at most ``STATE_MAX_LENGTH``, and
    none of these is repeated."""
    values = {name: params.getlist(name) for name in _PARAMETERS}
    for name in ("client_id", "redirect_uri"):
        if len(values[name]) != 1 or not values[name][0]:
            return AuthorizationProblem("invalid_request", f"{name} must be given once.")
    application = get_application_model().objects.filter(client_id=values["client_id"][0]).first()
    if application is None:
        return AuthorizationProblem("invalid_client", "No app is registered with this client_id.")
    redirect_uri = values["redirect_uri"][0]
    if not application.redirect_uri_allowed(redirect_uri):
        return AuthorizationProblem("invalid_request", "This redirect_uri is not one the app registered.")
    if redirect_uri_problem(redirect_uri) is not None:
        return AuthorizationProblem("invalid_request", "This redirect_uri may not be used.")

    def bad(error: str, description: str) -> AuthorizationProblem:
        state = values["state"][0] if len(values["state"]) == 1 and len(values["state"][0]) <= STATE_MAX_LENGTH \
            else None
        return AuthorizationProblem(error, description, _error_redirect(redirect_uri, error, description, state))

    repeated = [name for name, given in values.items() if len(given) > 1]
    if repeated:
        return bad("invalid_request", f"{repeated[0]} must be given at most once.")
    one = {name: given[0] if given else "" for name, given in values.items()}
    if one["response_type"] != "code":
        return bad("unsupported_response_type", "response_type must be code.")
    asked = one["scope"].split() or ["read"]  # Mastodon's default
    allowed = mastodon_scopes.expand(registered_scopes(application))
    outside = [scope for scope in asked if scope not in allowed]
    if outside:
        return bad("invalid_scope", f"The app did not register the scope {outside[0]!r}.")
    if len(one["state"]) > STATE_MAX_LENGTH:
        return bad("invalid_request", f"state must be at most {STATE_MAX_LENGTH} characters.")
    if one["code_challenge"] or one["code_challenge_method"]:
        if one["code_challenge_method"] != "S256":
            return bad("invalid_request", "code_challenge_method must be S256.")
        if not _PKCE_CHALLENGE.fullmatch(one["code_challenge"]):
            return bad("invalid_request", "code_challenge must be 43 to 128 characters of A-Z, a-z, 0-9, -._~.")
    return None


class AuthorizeView(AuthorizationView):
    def dispatch(self, request, *args, **kwargs):
        # Before the sign-in too: nobody signs in to be told the request was bad.
        if request.method in ("GET", "HEAD", "POST"):
            problem = authorization_problem(request.POST if request.method == "POST" else request.GET)
            if problem is not None:
                return render(request, "mastoapi/authorize_error.html", {"problem": problem}, status=400)
        return super().dispatch(request, *args, **kwargs)

    def redirect(self, redirect_to, application):
        if application is None:  # the redirect URI was not checked against an app
            return super().redirect(redirect_to, application)
        if redirect_to.startswith(OOB):
            code = parse_qs(urlsplit(redirect_to).query).get("code", [""])[0]
            return render(self.request, "mastoapi/authorized_oob.html", {"code": code, "application": application})
        # DOT has matched it to one of the app's registered URIs already.
        return OAuth2ResponseRedirect(redirect_to, [urlsplit(redirect_to).scheme])


class LoginView(auth_views.LoginView):
    template_name = "mastoapi/login.html"

    def post(self, request, *args, **kwargs):
        def refuse(message: str, status: int):
            # An empty form (a bound one would check the password to show its errors).
            return render(request, self.template_name, {"form": self.get_form_class()(request), "refusal": message,
                                                        "next": self.get_redirect_url()}, status=status)

        return throttling.sign_in_form_refusal(request, refuse) or super().post(request, *args, **kwargs)


class SignUpForm(forms.Form):
    username = forms.RegexField(regex=USERNAME_PATTERN, max_length=15, help_text="1-15 letters, digits or underscores.",
                                error_messages={"invalid": "1-15 letters, digits or underscores."})
    display_name = forms.CharField(max_length=DISPLAY_NAME_MAX_LENGTH, required=False)
    # Not stripped: signing in reads the password exactly as typed, so signing up must keep it so.
    password = forms.CharField(widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}), min_length=8,
                               max_length=128, strip=False, help_text="At least 8 characters, not only digits.")


class SignUpView(FormView):
    """Create an account, then go on where the sign-in would have: the link on the sign-in
    page carries the authorization request as ``next``, so an app (the web client at ``/``
    or any other) gets its code through the usual consent page. Counted against the
    registration limit as ``POST /v1/auth/register`` is, and checked by the same service."""

    template_name = "mastoapi/sign_up.html"
    form_class = SignUpForm

    def next_url(self) -> str:
        wanted = self.request.POST.get("next") or self.request.GET.get("next") or "/"
        safe = url_has_allowed_host_and_scheme(wanted, allowed_hosts={self.request.get_host()},
                                               require_https=self.request.is_secure())
        return wanted if safe else "/"

    def get_context_data(self, **kwargs):
        return super().get_context_data(next=self.next_url(), **kwargs)

    def post(self, request, *args, **kwargs):
        def refuse(message: str, status: int):
            # The form again, with the names typed (never the password) and why it was refused.
            typed = {field: request.POST.get(field, "") for field in ("username", "display_name")}
            return render(request, self.template_name, {"form": self.form_class(initial=typed), "refusal": message,
                                                        "next": self.next_url()}, status=status)

        return throttling.sign_up_form_refusal(request, refuse) or super().post(request, *args, **kwargs)

    def form_invalid(self, form):
        return self.render_to_response(self.get_context_data(form=form), status=400)

    def form_valid(self, form):
        try:
            user = social_services.user_register(**form.cleaned_data)
        except ValidationError as error:
            for field, messages in error.message_dict.items():
                for message in messages:
                    form.add_error(field if field in form.fields else None, message)
            return self.form_invalid(form)
        login(self.request, user)
        return redirect(self.next_url())


class SignOutView(auth_views.LogoutView):
    """End the session the sign-in pages opened (their tokens are the apps' to revoke), so
    the next person at this browser signs in afresh; back to the web client."""

    http_method_names = ["post", "options"]
    next_page = "/"
