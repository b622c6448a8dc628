"""The two HTML pages of the authorization-code grant: sign in, then consent.

The consent page is django-oauth-toolkit's own; it is told only how Mastodon
clients expect to be sent back: to the ``urn:ietf:wg:oauth:2.0:oob`` page that
shows the code for the user to paste, or to the app's registered redirect URI,
whatever its scheme (a phone app's ``myapp://``), as Mastodon allows. The
sign-in form is Django's, counted against the same login limit as the API's.
"""
from urllib.parse import parse_qs, urlsplit

from django.contrib.auth import views as auth_views
from django.shortcuts import render
from oauth2_provider.http import OAuth2ResponseRedirect
from oauth2_provider.views import AuthorizationView

from core import throttling

from .services import OOB


class AuthorizeView(AuthorizationView):
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
