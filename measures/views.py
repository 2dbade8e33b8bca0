"""Entry screens: a new session, the client-mode ORS/SRS form, paper entry, drafts, PIN.

All writes go through ``measures.services`` (which validate again and write the access
log); client mode is enforced by ``measures.clientmode.ClientModeMiddleware``.
"""

from __future__ import annotations

import json
from typing import Any

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import formats, timezone, translation
from django.utils.dateparse import parse_date
from django.utils.decorators import method_decorator
from django.utils.translation import gettext as _
from django.views import View

from clients.forms import add_service_errors
from clients.models import Episode
from clients.views import EpisodeMixin
from datapolicy.accounts import password_matches, secret_page
from datapolicy.models import Role
from datapolicy.services import Action, access_log_write

from . import clientmode
from .forms import PaperEntryForm, PinForm, SessionStartForm, UnlockForm
from .models import ScaleKind, Session, SessionDraft
from .services import (
    SameDateSession,
    ScoreInput,
    scale_for,
    score_set,
    session_correct,
    session_date_check,
    session_delete,
    session_draft_discard,
    session_draft_save,
    session_record,
)

THERAPIST = frozenset({Role.THERAPIST})


def _to_graph(episode_id: int) -> HttpResponse:
    """Back to the episode, opened at its graph card (where the page's messages are)."""
    return redirect(reverse("episode_detail", kwargs={"pk": episode_id}) + "#graph-card")


def _scale_context(episode: Episode, kind: str, marks: list[str]) -> dict[str, Any]:
    """The scale's wording in the active language, with the marks made so far."""
    scale = scale_for(episode, kind)
    lang = (translation.get_language() or "da")[:2]

    def word(texts: dict[str, str]) -> str:
        return texts.get(lang) or texts.get("da") or ""

    marks = ([*list(marks), "", "", "", ""])[:4]
    items = [
        {
            "n": i,
            "label": word(item["label"]),
            "left": word(item["left"]),
            "right": word(item["right"]),
            "value": marks[i - 1],
        }
        for i, item in enumerate(scale.items, start=1)
    ]
    return {
        "scale": scale,
        "scale_name": word(scale.name),
        "items": items,
        # ORS: the same low/high ends on every line; SRS/CSRS: each line has its anchors.
        "label_above": kind == ScaleKind.OUTCOME,
        "child": episode.age_group == "child",
    }


class SessionNewView(EpisodeMixin, View):
    """'New session': choose the date, then hand the iPad to the client (client mode)."""

    allowed_roles = THERAPIST
    template_name = "measures/session_new.html"

    def get(self, request: HttpRequest, pk: int) -> HttpResponse:
        episode = self.episode(pk, write=True)
        self.log_view(episode)
        return render(request, self.template_name, {"episode": episode, "form": SessionStartForm()})

    def post(self, request: HttpRequest, pk: int) -> HttpResponse:
        episode = self.episode(pk, write=True)
        form = SessionStartForm(request.POST)
        ask_same_date = False
        if form.is_valid():
            date = form.cleaned_data["date"]
            confirm = form.cleaned_data["confirm_same_date"]
            try:
                session_date_check(episode=episode, date=date, confirm_same_date=confirm)
            except SameDateSession as exc:
                ask_same_date = True
                add_service_errors(form, exc)
            except ValidationError as exc:
                add_service_errors(form, exc)
            else:
                clientmode.client_mode_enter(
                    request,
                    episode_id=episode.pk,
                    kind=ScaleKind.OUTCOME,
                    date=date.isoformat(),
                    confirm_same_date=confirm,
                )
                return redirect("client_mode_form")
        return render(
            request,
            self.template_name,
            {"episode": episode, "form": form, "ask_same_date": ask_same_date},
            status=400,
        )


class SessionMixin(EpisodeMixin):
    """One saved session of the therapist's own episodes (404 otherwise, also for a
    colleague who reads the episode through a supervision grant)."""

    allowed_roles = THERAPIST

    def session(self, pk: int) -> Session:
        user = self.request.user
        session: Session = self.get_scoped_object(
            Session.objects.for_user(user, self.organisation)
            .filter(episode__therapist=user)
            .select_related("episode__client"),
            pk=pk,
        )
        return session


class SrsStartView(SessionMixin, View):
    """At the end of the session: the SRS for a session that has none yet."""

    def post(self, request: HttpRequest, pk: int) -> HttpResponse:
        session = self.session(pk)
        if session.scores.filter(kind=ScaleKind.ALLIANCE).exists():
            messages.error(request, _("This session already has an SRS."))
            return redirect("episode_detail", pk=session.episode_id)
        if session.episode.status != Episode.Status.OPEN:
            messages.error(request, _("The episode is closed; start a new episode to continue."))
            return redirect("episode_detail", pk=session.episode_id)
        if session.date != timezone.localdate():
            # The client rates the session at its end; a later SRS is typed from paper.
            messages.error(
                request,
                _(
                    "The client gives the SRS at the end of today's session; type an earlier "
                    "session's SRS from the paper form (Correct)."
                ),
            )
            return redirect("episode_detail", pk=session.episode_id)
        clientmode.client_mode_enter(
            request,
            episode_id=session.episode_id,
            kind=ScaleKind.ALLIANCE,
            date=session.date.isoformat(),
            session_id=session.pk,
        )
        return redirect("client_mode_form")


class ClientModeFormView(EpisodeMixin, View):
    """The only page the client sees: one scale, four lines, confirm. No menus."""

    allowed_roles = THERAPIST
    template_name = "measures/client_form.html"

    def state_episode(self, request: HttpRequest) -> tuple[dict[str, Any] | None, Any]:
        state = clientmode.client_mode_state(request)
        if state is None:
            return None, None
        try:
            episode = self.episode(int(state["episode_id"]), write=True)
        except (Http404, KeyError, TypeError, ValueError):
            episode = None
        return state, episode

    def get(self, request: HttpRequest) -> HttpResponse:
        state, episode = self.state_episode(request)
        if state is None:
            return redirect("caseload")
        return self.render_form(request, state, episode, state.get("items") or [])

    def render_form(
        self,
        request: HttpRequest,
        state: dict[str, Any],
        episode: Any,
        marks: list[str],
        errors: list[str] | None = None,
        status: int = 200,
    ) -> HttpResponse:
        context: dict[str, Any] = {"state": state, "errors": errors or []}
        if episode is not None and not state.get("saved"):
            context.update(_scale_context(episode, state["kind"], marks))
            context["episode_id"] = episode.pk
        return render(request, self.template_name, context, status=status)

    def post(self, request: HttpRequest) -> HttpResponse:
        state, episode = self.state_episode(request)
        if state is None:
            return redirect("caseload")
        if episode is None or state.get("saved"):
            return redirect("client_mode_form")
        marks = [request.POST.get(f"item{i}", "") for i in range(1, 5)]
        try:
            value = ScoreInput.parse(marks)
            session = self.save(request, state, episode, value)
        except SameDateSession:
            # A session was added on this date since the therapist handed over the iPad:
            # a question for the therapist, not the client. The marks are kept as a draft
            # and the therapist answers when finishing it.
            self.keep_as_draft(request, state, episode, marks)
            return self.render_form(
                request,
                state,
                episode,
                marks,
                [_("Please hand the iPad back to your therapist.")],
                status=409,
            )
        except ValidationError as exc:
            return self.render_form(request, state, episode, marks, exc.messages, status=400)
        clientmode.client_mode_update(request, saved=True, session_id=session.pk, items=[])
        return redirect("client_mode_form")

    @staticmethod
    def keep_as_draft(
        request: HttpRequest, state: dict[str, Any], episode: Episode, marks: list[str]
    ) -> None:
        items = [str(v)[:5] for v in marks][:4]
        clientmode.client_mode_update(request, items=items)
        session_draft_save(
            actor=request.user,
            episode=episode,
            data={
                "kind": state["kind"],
                "date": state["date"],
                "session_id": state.get("session_id"),
                "confirm_same_date": False,
                "items": items,
            },
        )

    def save(
        self, request: HttpRequest, state: dict[str, Any], episode: Episode, value: ScoreInput
    ) -> Session:
        date = parse_date(str(state.get("date", "")))
        if date is None:
            raise ValidationError(_("The session date is missing."))
        if state.get("session_id"):
            session: Session = self.get_scoped_object(
                Session.objects.for_org(self.organisation).filter(episode=episode),
                pk=state["session_id"],
            )
            score_set(
                actor=request.user,
                session=session,
                kind=state["kind"],
                value=value,
                request=request,
            )
            session_draft_discard(actor=request.user, episode=episode)
            return session
        kwargs = {"ors": value} if state["kind"] == ScaleKind.OUTCOME else {"srs": value}
        return session_record(
            actor=request.user,
            episode=episode,
            date=date,
            confirm_same_date=bool(state.get("confirm_same_date")),
            request=request,
            **kwargs,
        )


class ClientModeDraftView(EpisodeMixin, View):
    """Autosave of the marks made so far (an interrupted session is not lost)."""

    allowed_roles = THERAPIST

    def post(self, request: HttpRequest, pk: int) -> HttpResponse:
        episode = self.episode(pk, write=True)
        state = clientmode.client_mode_state(request)
        if state is None or state.get("episode_id") != episode.pk:
            return JsonResponse({"error": "not in client mode for this episode"}, status=409)
        try:
            payload = json.loads(request.body or b"{}")
            items = [str(v)[:5] for v in payload.get("items", [])][:4]
        except (ValueError, AttributeError, TypeError):
            return JsonResponse({"error": "bad request"}, status=400)
        clientmode.client_mode_update(request, items=items)
        session_draft_save(
            actor=request.user,
            episode=episode,
            data={
                "kind": state["kind"],
                "date": state["date"],
                "session_id": state.get("session_id"),
                # The therapist's answer to "another session on this date?" goes with
                # the draft: the client who finishes it cannot be asked.
                "confirm_same_date": bool(state.get("confirm_same_date")),
                "items": items,
            },
        )
        return JsonResponse({"saved": True})


@method_decorator(secret_page, name="dispatch")
class ClientModeUnlockView(EpisodeMixin, View):
    """The therapist takes the iPad back: PIN (or password), limited attempts."""

    allowed_roles = THERAPIST
    template_name = "measures/client_unlock.html"

    def get(self, request: HttpRequest) -> HttpResponse:
        if clientmode.client_mode_state(request) is None:
            return redirect("caseload")
        left = clientmode.attempts_left(request)
        return self.page(request, UnlockForm(uses_pin=self.asks_pin(request, left)), left)

    @staticmethod
    def uses_pin(request: HttpRequest) -> bool:
        return bool(request.user.client_mode_pin)  # type: ignore[union-attr]

    def asks_pin(self, request: HttpRequest, left: int | None) -> bool:
        """The page asks for the PIN when one is set and its tries can be counted (left
        is None while the counter does not answer: the password then)."""
        return self.uses_pin(request) and left is not None

    def page(
        self, request: HttpRequest, form: UnlockForm, left: int | None, status: int = 200
    ) -> HttpResponse:
        return render(
            request,
            self.template_name,
            {
                "form": form,
                "uses_pin": self.asks_pin(request, left),
                "pin_unavailable": self.uses_pin(request) and left is None,
                "attempts_left": left,
            },
            status=status,
        )

    def post(self, request: HttpRequest) -> HttpResponse:
        if clientmode.client_mode_state(request) is None:
            return redirect("caseload")
        typed = "password" if request.POST.get("typed") == "password" else "pin"
        form = UnlockForm(request.POST, uses_pin=typed == "pin")
        secret = form.data.get("secret", "")
        result = clientmode.client_mode_unlock(request, str(secret), typed=typed)
        if result == clientmode.UNLOCK_LOGGED_OUT:
            messages.error(request, _("Too many wrong attempts. Log in again."))
            return redirect("login")
        if result == clientmode.UNLOCK_PIN_UNAVAILABLE:
            # The PIN typed was not checked (no counter): the page again, asking for the
            # password, and saying why. 503: the PIN unlock is what is unavailable.
            return self.page(request, UnlockForm(uses_pin=False), None, status=503)
        if result == clientmode.UNLOCK_WRONG:
            left = clientmode.attempts_left(request)
            asks_pin = self.asks_pin(request, left)
            form = UnlockForm(request.POST, uses_pin=asks_pin)
            form.is_valid()
            form.add_error(
                "secret",
                _("Wrong PIN. Try again.") if asks_pin else _("Wrong password. Try again."),
            )
            return self.page(request, form, left, status=400)
        state = clientmode.client_mode_leave(request) or {}
        episode_id = state.get("episode_id")
        if state.get("saved"):
            label = "ORS" if state.get("kind") == ScaleKind.OUTCOME else "SRS"
            messages.success(request, _("%(scale)s saved.") % {"scale": label})
        elif state.get("items"):
            messages.info(request, _("The entry was interrupted; the marks are kept as a draft."))
        if episode_id:
            return _to_graph(episode_id)
        return redirect("caseload")


class DraftResumeView(EpisodeMixin, View):
    allowed_roles = THERAPIST

    def post(self, request: HttpRequest, pk: int) -> HttpResponse:
        episode = self.episode(pk, write=True)
        draft = (
            SessionDraft.objects.for_org(self.organisation)
            .filter(episode=episode, created_by=request.user)
            .first()
        )
        if draft is None:
            messages.info(request, _("There is no interrupted entry."))
            return redirect("episode_detail", pk=episode.pk)
        data = draft.data or {}
        kind = str(data.get("kind")) if data.get("kind") in ScaleKind.values else ScaleKind.OUTCOME
        session_id = data.get("session_id") if isinstance(data.get("session_id"), int) else None
        confirm = bool(data.get("confirm_same_date"))
        confirm = confirm or request.POST.get("confirm_same_date") == "1"
        date = parse_date(str(data.get("date", "")))
        if session_id is None and date is not None:
            # The date's checks are the therapist's to answer, before the client gets the
            # iPad (a session may have been added on that date since the interruption).
            try:
                session_date_check(episode=episode, date=date, confirm_same_date=confirm)
            except SameDateSession as exc:
                return render(
                    request,
                    "measures/draft_resume_confirm.html",
                    {"episode": episode, "question": exc.messages[0]},
                )
            except ValidationError as exc:
                for message in exc.messages:
                    messages.error(request, message)
                return redirect("episode_detail", pk=episode.pk)
        clientmode.client_mode_enter(
            request,
            episode_id=episode.pk,
            kind=kind,
            date=str(data.get("date", "")),
            session_id=session_id,
            confirm_same_date=confirm,
            items=[str(v) for v in data.get("items", [])][:4],
        )
        return redirect("client_mode_form")


class DraftDiscardView(EpisodeMixin, View):
    allowed_roles = THERAPIST

    def post(self, request: HttpRequest, pk: int) -> HttpResponse:
        episode = self.episode(pk, write=True)
        if session_draft_discard(actor=request.user, episode=episode):
            messages.success(request, _("The interrupted entry is discarded."))
        return redirect("episode_detail", pk=episode.pk)


def _paper_context(episode: Episode, form: PaperEntryForm, **extra: Any) -> dict[str, Any]:
    """The paper form's template context (new entry and correction alike)."""
    return {
        "episode": episode,
        "form": form,
        "ors_items": [form[f"ors_{i}"] for i in range(1, 5)],
        "srs_items": [form[f"srs_{i}"] for i in range(1, 5)],
        **extra,
    }


def _form_scores(form: PaperEntryForm) -> dict[str, ScoreInput]:
    """The ORS and/or SRS typed into a paper-entry form. A ValidationError names every
    bad field of both scales at once."""
    scores: dict[str, ScoreInput] = {}
    errors: dict[str, list[str]] = {}
    for prefix in ("ors", "srs"):
        if form.given(prefix):
            items, total = form.raw(prefix)
            try:
                scores[prefix] = ScoreInput.parse(items, total, field=prefix)
            except ValidationError as exc:
                for name, messages_ in exc.message_dict.items():
                    errors.setdefault(name, []).extend(messages_)
    if errors:
        raise ValidationError(errors)
    return scores


class PaperEntryView(EpisodeMixin, View):
    """Scores typed from a paper form by the therapist (items in cm, or totals)."""

    allowed_roles = THERAPIST
    template_name = "measures/paper_entry.html"

    def get(self, request: HttpRequest, pk: int) -> HttpResponse:
        episode = self.episode(pk, write=True)
        self.log_view(episode)
        return render(request, self.template_name, _paper_context(episode, PaperEntryForm()))

    def post(self, request: HttpRequest, pk: int) -> HttpResponse:
        episode = self.episode(pk, write=True)
        form = PaperEntryForm(request.POST)
        ask_same_date = False
        if form.is_valid():
            try:
                scores = _form_scores(form)
                session_record(
                    actor=request.user,
                    episode=episode,
                    date=form.cleaned_data["date"],
                    confirm_same_date=form.cleaned_data["confirm_same_date"],
                    request=request,
                    **scores,
                )
            except SameDateSession as exc:
                ask_same_date = True
                add_service_errors(form, exc)
            except ValidationError as exc:
                add_service_errors(form, exc)
            else:
                if "ors" not in scores:
                    messages.warning(request, _("SRS saved without an ORS (flagged)."))
                else:
                    messages.success(request, _("Session saved."))
                return _to_graph(episode.pk)
        return render(
            request,
            self.template_name,
            _paper_context(episode, form, ask_same_date=ask_same_date),
            status=400,
        )


def _correction_initial(session: Session) -> dict[str, Any]:
    """The saved values as the form shows them (decimal comma in Danish)."""
    initial: dict[str, Any] = {"date": session.date}
    for score in session.scores.all():
        prefix = "ors" if score.kind == ScaleKind.OUTCOME else "srs"
        if score.item1 is not None:
            for i, value in enumerate(score.items, start=1):
                initial[f"{prefix}_{i}"] = formats.number_format(value or 0, 1)
        else:
            initial[f"{prefix}_total"] = formats.number_format(score.total, 1)
    return initial


class SessionEditView(SessionMixin, View):
    """Correct a saved session: its date and its scores as typed (or as marked)."""

    template_name = "measures/paper_entry.html"

    def render_form(
        self, session: Session, form: PaperEntryForm, status: int = 200, **extra: Any
    ) -> HttpResponse:
        context = _paper_context(session.episode, form, session=session, **extra)
        return render(self.request, self.template_name, context, status=status)

    def get(self, request: HttpRequest, pk: int) -> HttpResponse:
        session = self.session(pk)
        self.log_view(session.episode)
        return self.render_form(session, PaperEntryForm(initial=_correction_initial(session)))

    def post(self, request: HttpRequest, pk: int) -> HttpResponse:
        session = self.session(pk)
        form = PaperEntryForm(request.POST)
        ask_same_date = False
        if form.is_valid():
            try:
                scores = _form_scores(form)
                session_correct(
                    actor=request.user,
                    session=session,
                    date=form.cleaned_data["date"],
                    ors=scores.get("ors"),
                    srs=scores.get("srs"),
                    confirm_same_date=form.cleaned_data["confirm_same_date"],
                    request=request,
                )
            except SameDateSession as exc:
                ask_same_date = True
                add_service_errors(form, exc)
            except ValidationError as exc:
                add_service_errors(form, exc)
            else:
                messages.success(request, _("The session is corrected."))
                return _to_graph(session.episode_id)
        session.refresh_from_db()
        return self.render_form(session, form, status=400, ask_same_date=ask_same_date)


class SessionDeleteView(SessionMixin, View):
    """Delete a saved session after a confirmation page."""

    template_name = "measures/session_delete.html"

    def get(self, request: HttpRequest, pk: int) -> HttpResponse:
        session = self.session(pk)
        self.log_view(session.episode)  # the page shows the client code and the date
        return render(request, self.template_name, {"session": session, "episode": session.episode})

    def post(self, request: HttpRequest, pk: int) -> HttpResponse:
        session = self.session(pk)
        number = session.number
        session_delete(actor=request.user, session=session, request=request)
        messages.success(request, _("Session %(number)s is deleted.") % {"number": number})
        return _to_graph(session.episode_id)


@method_decorator(secret_page, name="dispatch")
class PinView(EpisodeMixin, View):
    """The therapist sets the PIN that ends client mode (stored hashed)."""

    allowed_roles = THERAPIST
    template_name = "measures/pin.html"

    def get(self, request: HttpRequest) -> HttpResponse:
        return render(request, self.template_name, {"form": PinForm()})

    def post(self, request: HttpRequest) -> HttpResponse:
        form = PinForm(request.POST)
        if form.is_valid():
            # SECURITY: checked as a login is, so django-axes counts wrong passwords.
            if not password_matches(request, request.user, form.cleaned_data["password"]):
                form.add_error("password", _("Wrong password."))
            else:
                try:
                    clientmode.user_pin_set(actor=request.user, pin=form.cleaned_data["pin"])
                except ValidationError as exc:
                    add_service_errors(form, exc)
                else:
                    access_log_write(
                        actor=request.user,
                        organisation=self.organisation,
                        action=Action.UPDATE,
                        object_type="client_mode_pin",
                        object_id=request.user.pk,
                        role=self.acting_role,
                        request=request,
                    )
                    messages.success(request, _("Your PIN is saved."))
                    return redirect("caseload")
        return render(request, self.template_name, {"form": form}, status=400)
