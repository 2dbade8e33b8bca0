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
from django.urls import path, reverse_lazy

from .models import User


def reset_hours() -> int:
    """How long a link is valid, in whole hours (PASSWORD_RESET_TIMEOUT is seconds)."""
    return max(1, int(settings.PASSWORD_RESET_TIMEOUT) // 3600)


class ResetForm(PasswordResetForm):
    def get_users(self, email: str) -> Iterator[Any]:
        return iter(User.objects.filter(email__iexact=email.strip(), is_active=True))


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
