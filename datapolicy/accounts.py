"""One's own account: change the password, or set a new one through a link by e-mail.

Django's auth views with the platform's templates. Every account logs in with a password
(no single sign-on), so a user without a usable password — someone added by the CSV user
import who has not yet set one — may ask for the link too (Django's form leaves such
users out). The page always answers the same, whether or not the address is known, so it
does not tell who has an account. The link (a one-time token, valid for
``PASSWORD_RESET_TIMEOUT``) carries a user id and a token, never a client code; the
confirm view moves the token out of the URL before the form is shown, and refuses the
link of a user deactivated since it was sent; a link that cannot be used is sent on to a
page without the token in its address (``password_reset_invalid``).

The pages where a password or PIN is typed, or whose address holds a reset token, are
wrapped in :func:`secret_page`: never cached, no ``Referer`` sent from them, and their
form fields masked in error reports. A user gets at most :func:`reset_mails_per_hour`
(``DJANGO_RESET_MAILS_PER_HOUR``, 5) reset mails an hour, however often the page is asked
(no mail flood; the page answers the same). While Redis does not answer, no reset mail
is queued or sent (its count cannot be kept) and the page still answers the same.

Every password typed on these pages (the old one on the change page, and the PIN page's)
is checked through ``authenticate()``, so django-axes counts a wrong one like a wrong
login and refuses it while that username is locked at that address: whoever holds a
login (an iPad left open, a stolen session) cannot guess the password without limit.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.contrib.auth import authenticate
from django.contrib.auth import views as auth_views
from django.contrib.auth.forms import PasswordChangeForm, PasswordResetForm
from django.contrib.auth.tokens import default_token_generator
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse_lazy
from django.utils import translation
from django.utils.cache import add_never_cache_headers
from django.utils.decorators import method_decorator
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode
from django.views.decorators.debug import sensitive_post_parameters
from django.views.generic import TemplateView
from kombu.exceptions import OperationalError
from redis.exceptions import RedisError

from .counters import CounterUnavailable, counter_incr
from .models import User

logger = logging.getLogger(__name__)


def reset_mails_per_hour() -> int:
    """Reset mails one user may be sent an hour (welcome mails, sent by an import, are
    not counted): ``FITPLATFORM["RESET_MAILS_PER_HOUR"]``, from the environment's
    ``DJANGO_RESET_MAILS_PER_HOUR`` (a positive integer; check ``fitplatform.E005``)."""
    return int(settings.FITPLATFORM.get("RESET_MAILS_PER_HOUR", 5))


def secret_page(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """SECURITY: for a page where a password or PIN is typed, or whose URL carries a
    reset token: no browser or proxy keeps the page (``Cache-Control: no-store``), the
    typed secrets are masked in error reports (``sensitive_post_parameters``), and a page
    at a URL that holds the reset token sends no ``Referer`` (the platform's
    ``same-origin`` would send that URL, token included, to its own stylesheet, scripts
    and links).

    Only there, and there only redirects answer (to ``.../set-password/`` or to the
    page of a link that cannot be used): a form posted from a ``no-referrer`` page
    carries ``Origin: null`` in Chromium and Safari, which Django's CSRF check refuses —
    the password-change, PIN and unlock forms, and the language switch of every page,
    would fail in every real browser."""

    @functools.wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        response = view(request, *args, **kwargs)
        add_never_cache_headers(response)
        token = kwargs.get("token")
        if token and token != auth_views.PasswordResetConfirmView.reset_url_token:
            response["Referrer-Policy"] = "no-referrer"
        return response

    return sensitive_post_parameters()(wrapped)


def reset_hours() -> int:
    """How long a link is valid, in whole hours (PASSWORD_RESET_TIMEOUT is seconds)."""
    return max(1, int(settings.PASSWORD_RESET_TIMEOUT) // 3600)


def password_matches(request: HttpRequest, user: Any, password: str) -> bool:
    """Whether ``password`` is ``user``'s, checked as a login would be: through
    ``authenticate()``, so that django-axes counts a wrong one (username and address, as
    on the login page) and refuses every try while the pair is locked (the page then
    becomes the lock-out page, HTTP 429). The user's login is not ended."""
    if not password:
        return False
    found = authenticate(request, username=user.get_username(), password=password)
    return found is not None and found.pk == user.pk


class ChangeForm(PasswordChangeForm):
    """Django's form; the old password is checked by :func:`password_matches`."""

    def __init__(self, user: Any, *args: Any, request: HttpRequest, **kwargs: Any) -> None:
        self.request = request
        super().__init__(user, *args, **kwargs)

    def clean_old_password(self) -> str:
        old: str = self.cleaned_data["old_password"]
        if not password_matches(self.request, self.user, old):
            raise ValidationError(
                self.error_messages["password_incorrect"], code="password_incorrect"
            )
        return old


@method_decorator(secret_page, name="dispatch")
class ChangeView(auth_views.PasswordChangeView):
    form_class = ChangeForm

    def get_form_kwargs(self) -> dict[str, Any]:
        return {**super().get_form_kwargs(), "request": self.request}


class ResetForm(PasswordResetForm):
    def get_users(self, email: str) -> Iterator[Any]:
        return iter(User.objects.filter(email__iexact=email.strip(), is_active=True))

    def save(self, *args: Any, request: HttpRequest | None = None, **kwargs: Any) -> None:
        """Queue the mail instead of sending it while the page waits: an address with an
        account would otherwise answer an SMTP round-trip later than one without, and
        tell who has an account. The worker makes the token (never a task argument)."""
        user_ids = [u.pk for u in self.get_users(self.cleaned_data["email"])]
        if user_ids and request is not None:
            link_mail_after_commit(request, "reset", user_ids)


LINK_MAILS = {
    # kind: (subject template, body template, only users without a usable password)
    "reset": (
        "registration/password_reset_subject.txt",
        "registration/password_reset_email.txt",
        False,
    ),
    "welcome": ("registration/welcome_subject.txt", "registration/welcome_email.txt", True),
}


def link_base() -> tuple[str, bool] | None:
    """Host and "is https" of ``FITPLATFORM_BASE_URL`` (``DJANGO_BASE_URL``), or None
    when it is not set."""
    base = getattr(settings, "FITPLATFORM_BASE_URL", "")
    if not base:
        return None
    parts = urlsplit(base)
    return parts.netloc, parts.scheme == "https"


def link_mail_send(
    *,
    kind: str,
    user_ids: list[int],
    organisation_name: str,
    domain: str,
    use_https: bool,
    language: str,
) -> int:
    """E-mail each user a one-time link to choose a password: ``reset`` (forgotten
    password) or ``welcome`` (a new user from the CSV import; none for a user who
    meanwhile chose a password). Deactivated users get nothing. With
    ``FITPLATFORM_BASE_URL`` set, the links use it whatever ``domain`` says (a mail
    queued before it was set included)."""
    # SECURITY: the configured address, never one that came with a request.
    domain, use_https = link_base() or (domain, use_https)
    subject, body, only_new = LINK_MAILS[kind]
    form = ResetForm()
    sent = 0
    with translation.override(language):
        for user in User.objects.filter(pk__in=user_ids, is_active=True).order_by("pk"):
            if (only_new and user.has_usable_password()) or not user.email:
                continue
            if kind == "reset" and not _reset_mail_allowed(user.pk):
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
            form.send_mail(subject, body, context, None, user.email)
            sent += 1
    return sent


def _reset_mail_allowed(user_id: int) -> bool:
    """SECURITY: whoever knows an address cannot flood its mailbox: one more reset mail
    for this user this hour, if under the limit. Without the counter (Redis down), none:
    fail closed (the user asks again; datapolicy.counters logged the outage)."""
    try:
        sent = counter_incr(f"reset-mail:{user_id}", timeout=3600)
    except CounterUnavailable:
        logger.warning("reset mail not sent: its hourly count is unavailable (user id %s)", user_id)
        return False
    if sent > reset_mails_per_hour():
        logger.warning("reset mail not sent: hourly limit reached (user id %s)", user_id)
        return False
    return True


def link_mail_after_commit(
    request: HttpRequest, kind: str, user_ids: list[int], organisation_id: int | None = None
) -> None:
    """Queue :func:`link_mail_send` (Celery task, user ids only) once the transaction
    commits. The links lead to ``FITPLATFORM_BASE_URL`` (``DJANGO_BASE_URL``); without
    it, to the address the request used (``ALLOWED_HOSTS`` decides which those can be)."""
    from django.db import transaction

    from .tasks import password_link_mail

    domain, use_https = link_base() or (request.get_host(), request.is_secure())
    args = (
        kind,
        user_ids,
        organisation_id,
        domain,
        use_https,
        translation.get_language() or settings.LANGUAGE_CODE,
    )

    def queue() -> None:
        # SECURITY: the page answers the same whether or not the address has an account,
        # so a broker that does not answer must not turn into a server error here (only
        # known addresses get this far). The mail is lost; the user asks again.
        try:
            password_link_mail.delay(*args)
        except (RedisError, OSError, OperationalError) as exc:
            logger.warning(
                "%s mail not queued: the Celery broker (REDIS_URL) does not answer (%s)",
                kind,
                type(exc).__name__,
            )

    transaction.on_commit(queue)


class ResetView(auth_views.PasswordResetView):
    form_class = ResetForm
    success_url = reverse_lazy("password_reset_done")


@method_decorator(secret_page, name="dispatch")
class ResetConfirmView(auth_views.PasswordResetConfirmView):
    """Django's view: a good token in the URL is moved into the session and the browser
    sent on to ``.../set-password/`` (Django's own pattern), a URL without it. A link
    that cannot be used is sent on likewise, to :class:`ResetInvalidView`: the page the
    user reads and acts on (ask for a new link, switch the language) never has a token
    in its URL, so it needs no ``no-referrer`` (whose ``Origin: null`` would make the
    CSRF check refuse its forms) and sends no token in a ``Referer`` either. Only the
    redirect itself answers at the token's URL, with ``no-referrer``."""

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        response = super().dispatch(request, *args, **kwargs)
        if kwargs.get("token") != self.reset_url_token and isinstance(response, TemplateResponse):
            # The "cannot be used" page would be drawn at the token's URL.
            return redirect("password_reset_invalid")
        return response

    def get_user(self, uidb64: str) -> Any:
        # SECURITY: a link sent before the user was deactivated sets no password (the
        # token does not cover is_active); the page says the link cannot be used.
        user = super().get_user(uidb64)
        return user if user is not None and user.is_active else None

    def form_valid(self, form: Any) -> Any:
        # A password chosen through the mailed link lifts a lock-out of failed logins:
        # whoever holds the mailbox may log in with the new one straight away.
        from axes.utils import reset

        response = super().form_valid(form)
        reset(username=form.user.get_username())
        return response


class ResetInvalidView(TemplateView):
    """The page of a reset link that cannot be used (used, too old, changed password or
    e-mail since, deactivated user), at an address without the token."""

    template_name = "registration/password_reset_confirm.html"
    extra_context = {"validlink": False}


class ResetDoneView(auth_views.PasswordResetDoneView):
    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        return {**super().get_context_data(**kwargs), "reset_hours": reset_hours()}


urlpatterns = [
    path("password/change/", ChangeView.as_view(), name="password_change"),
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
        "password/reset/invalid/",
        ResetInvalidView.as_view(),
        name="password_reset_invalid",
    ),
    path(
        "password/reset/<uidb64>/<token>/",
        ResetConfirmView.as_view(),
        name="password_reset_confirm",
    ),
    path(
        "password/reset/complete/",
        auth_views.PasswordResetCompleteView.as_view(),
        name="password_reset_complete",
    ),
]
