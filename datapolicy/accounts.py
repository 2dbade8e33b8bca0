"""One's own account: change the password, or set a new one through a link by e-mail.

Django's auth views with the platform's templates. Every account logs in with a password
(no single sign-on), so a user without a usable password — someone added by the CSV user
import who has not yet set one — may ask for the link too (Django's form leaves such
users out). The page always answers the same, whether or not the address is known, so it
does not tell who has an account. The link (a one-time token, valid for
``PASSWORD_RESET_TIMEOUT``) carries a user id and a token, never a client code; the
confirm view moves the token out of the URL before the form is shown.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from django.conf import settings
from django.contrib.auth import views as auth_views
from django.contrib.auth.forms import PasswordResetForm
from django.contrib.auth.tokens import default_token_generator
from django.urls import path, reverse_lazy
from django.utils import translation
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode

from .models import User


def reset_hours() -> int:
    """How long a link is valid, in whole hours (PASSWORD_RESET_TIMEOUT is seconds)."""
    return max(1, int(settings.PASSWORD_RESET_TIMEOUT) // 3600)


class ResetForm(PasswordResetForm):
    def get_users(self, email: str) -> Iterator[Any]:
        return iter(User.objects.filter(email__iexact=email.strip(), is_active=True))


def welcome_send(
    *, user_ids: list[int], organisation_name: str, domain: str, use_https: bool, language: str
) -> int:
    """E-mail each new user a link to choose their first password (the reset link, with a
    welcome text). Users who meanwhile chose one, or were deactivated, get nothing."""
    form = ResetForm()
    sent = 0
    with translation.override(language):
        for user in User.objects.filter(pk__in=user_ids, is_active=True).order_by("pk"):
            if user.has_usable_password() or not user.email:
                continue
            context = {
                "email": user.email,
                "domain": domain,
                "site_name": domain,
                "uid": urlsafe_base64_encode(force_bytes(user.pk)),
                "user": user,
                "token": default_token_generator.make_token(user),
                "protocol": "https" if use_https else "http",
                "reset_hours": reset_hours(),
                "organisation": organisation_name,
            }
            form.send_mail(
                "registration/welcome_subject.txt",
                "registration/welcome_email.txt",
                context,
                None,
                user.email,
            )
            sent += 1
    return sent


class ResetView(auth_views.PasswordResetView):
    form_class = ResetForm
    email_template_name = "registration/password_reset_email.txt"
    success_url = reverse_lazy("password_reset_done")

    def form_valid(self, form: Any) -> Any:
        self.extra_email_context = {"reset_hours": reset_hours()}
        return super().form_valid(form)


class ResetDoneView(auth_views.PasswordResetDoneView):
    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        return {**super().get_context_data(**kwargs), "reset_hours": reset_hours()}


urlpatterns = [
    path("password/change/", auth_views.PasswordChangeView.as_view(), name="password_change"),
    path(
        "password/change/done/",
        auth_views.PasswordChangeDoneView.as_view(),
        name="password_change_done",
    ),
    path(
        "password/reset/",
        ResetView.as_view(),
        name="password_reset",
    ),
    path(
        "password/reset/sent/",
        ResetDoneView.as_view(),
        name="password_reset_done",
    ),
    path(
        "password/reset/<uidb64>/<token>/",
        auth_views.PasswordResetConfirmView.as_view(),
        name="password_reset_confirm",
    ),
    path(
        "password/reset/complete/",
        auth_views.PasswordResetCompleteView.as_view(),
        name="password_reset_complete",
    ),
]
