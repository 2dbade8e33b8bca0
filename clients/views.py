"""Therapist pages: the caseload, a new client, the episode page and episode actions."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.text import get_text_list
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views import View
from django.views.generic import TemplateView

from datapolicy.access import units_of
from datapolicy.models import Role
from datapolicy.scoping import TenantPageMixin
from datapolicy.services import Action, access_log_list, access_log_write
from datapolicy.validators import CPR_MESSAGE, looks_like_cpr

from .forms import (
    ClientCreateForm,
    EpisodeCloseForm,
    EpisodeRestartForm,
    EpisodeTransferForm,
    HandoverForm,
    add_service_errors,
)
from .models import Episode
from .selectors import caseload, episode_sessions, handover_rows, transfer_candidates
from .services import (
    client_create_with_episode,
    episode_close,
    episode_reopen,
    episode_start,
    episode_transfer,
    episodes_hand_over,
    later_episodes,
)

ALERT_ORDER = ("deterioration", "off_track", "alliance", "no_contact")


CASELOAD_STATUSES = ("active", "inactive", "all")
# The caseload's search term, kept server-side in the user's session (never in a URL).
CASELOAD_SEARCH_KEY = "caseload_search"


class CaseloadView(TenantPageMixin, TemplateView):
    """The therapist's start page: own episodes, what needs attention first.

    The status filter is a GET (``?status=inactive``: no client data in it). The search
    by client code is POSTed and then redirected to the GET (post-redirect-get), so that
    Back works without "confirm form resubmission"; the term is kept in the user's
    session, never in the URL."""

    template_name = "clients/caseload.html"
    allowed_roles = frozenset({Role.THERAPIST})
    model = Episode

    @staticmethod
    def _status(value: str | None) -> str:
        return value if value in CASELOAD_STATUSES else "active"

    def _search(self) -> str:
        stored = self.request.session.get(CASELOAD_SEARCH_KEY) or {}
        if stored.get("org") != self.organisation.pk:
            return ""
        return str(stored.get("q", ""))[:40]

    def post(self, request: Any, *args: Any, **kwargs: Any) -> Any:
        # SECURITY: the search term is POSTed and kept in the session, so that a client
        # code never ends up in a URL (server access logs, browser history on a shared
        # iPad).
        q = request.POST.get("q", "").strip()[:40]
        if looks_like_cpr(q):
            # SECURITY: refused with the reason and neither kept nor echoed back.
            messages.error(request, CPR_MESSAGE)
            q = ""
        request.session[CASELOAD_SEARCH_KEY] = {"org": self.organisation.pk, "q": q}
        status = self._status(request.POST.get("status"))
        url = reverse("caseload")
        if status != "active":
            url += "?" + urlencode({"status": status})
        return redirect(url)

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        status = self._status(self.request.GET.get("status"))
        search = self._search()
        episodes = list(
            caseload(
                therapist=self.request.user,
                organisation=self.organisation,
                status=status,
                search=search,
            )
        )
        # Attention first: more (and more serious) alerts first, then by code.
        episodes.sort(
            key=lambda e: (
                -len(e.alerts),
                min((ALERT_ORDER.index(a) for a in e.alerts if a in ALERT_ORDER), default=9),
                e.client.code,
            )
        )
        # The page shows each client's code and latest scores: one entry per client in
        # one insert, so that each client's own log (right of access) shows the read.
        access_log_list(
            actor=self.request.user,
            organisation=self.organisation,
            object_type="caseload",
            client_ids=[e.client_id for e in episodes],
            role=self.acting_role,
            request=self.request,
        )
        return {
            **super().get_context_data(**kwargs),
            "episodes": episodes,
            "status": status,
            "q": search,
        }


class ClientCreateView(TenantPageMixin, View):
    """A new client and their first episode in one step."""

    allowed_roles = frozenset({Role.THERAPIST})
    model = Episode
    template_name = "clients/client_new.html"

    def units(self) -> list[Any]:
        return units_of(self.request.user, self.organisation, Role.THERAPIST)

    def get(self, request: HttpRequest) -> HttpResponse:
        form = ClientCreateForm(units=self.units())
        return render(request, self.template_name, {"form": form})

    def post(self, request: HttpRequest) -> HttpResponse:
        units = self.units()
        if not units:
            raise PermissionDenied
        form = ClientCreateForm(request.POST, units=units)
        if form.is_valid():
            # The therapist's own unit (the first one if the form did not say).
            unit = next((u for u in units if u.pk == form.cleaned_data["unit"]), units[0])
            try:
                episode = client_create_with_episode(
                    actor=request.user,
                    organisation=self.organisation,
                    unit=unit,
                    code=form.cleaned_data["code"],
                    age_group=form.cleaned_data["age_group"],
                    birth_year=form.cleaned_data["birth_year"],
                    started_on=form.cleaned_data["started_on"],
                    request=request,
                )
            except ValidationError as exc:
                add_service_errors(form, exc)
            else:
                messages.success(request, _("Client created and episode started."))
                return redirect("episode_detail", pk=episode.pk)
        return render(request, self.template_name, {"form": form}, status=400)


class EpisodeMixin(TenantPageMixin):
    """One episode the user may see (404 otherwise: not even its existence leaks)."""

    model = Episode

    def episode(self, pk: int, *, write: bool = False) -> Episode:
        qs = self.scoped_queryset().select_related("client", "unit", "therapist")
        if write:
            # SECURITY: changes only by the episode's own therapist; a supervision grant
            # lets a leader or colleague read the graph, never write.
            qs = qs.filter(therapist=self.request.user)
        episode: Episode = self.get_scoped_object(qs, pk=pk)
        return episode

    def log_view(self, episode: Episode) -> None:
        """Access-log a page that shows the client's data."""
        access_log_write(
            actor=self.request.user,
            organisation=self.organisation,
            action=Action.VIEW,
            obj=episode,
            role=self.acting_role_for(episode.client_id),
            request=self.request,
        )


class EpisodeDetailView(EpisodeMixin, TemplateView):
    """The client's episode: facts, alerts, graph, sessions and the actions."""

    template_name = "clients/episode_detail.html"
    allowed_roles = frozenset({Role.THERAPIST, Role.UNIT_LEADER})

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        from measures.charts import episode_chart, figure_config
        from measures.models import SessionDraft

        episode = self.episode(kwargs["pk"])
        self.log_view(episode)
        is_owner = episode.therapist_id == self.request.user.pk
        draft = (
            SessionDraft.objects.for_org(self.organisation)
            .filter(episode=episode, created_by=self.request.user)
            .first()
            if is_owner
            else None
        )
        chart = episode_chart(episode)
        sessions = episode_sessions(episode=episode)
        return {
            **super().get_context_data(**kwargs),
            "episode": episode,
            "is_owner": is_owner,
            "is_open": episode.status == Episode.Status.OPEN,
            "sessions": sessions,
            "draft": draft,
            "chart": chart,
            "chart_config": figure_config(),
            "close_form": EpisodeCloseForm(),
            "restart_form": EpisodeRestartForm(),
            "has_candidates": is_owner and bool(transfer_candidates(episode=episode)),
            "can_reopen": is_owner
            and episode.status == Episode.Status.CLOSED
            and not later_episodes(episode).exists(),
            "pin_missing": is_owner and not self.request.user.client_mode_pin,  # type: ignore[union-attr]
            # The client rates a session at its end: the SRS button only on today's.
            "today": timezone.localdate(),
        }


class EpisodeCloseView(EpisodeMixin, View):
    allowed_roles = frozenset({Role.THERAPIST})

    def post(self, request: HttpRequest, pk: int) -> HttpResponse:
        episode = self.episode(pk, write=True)
        form = EpisodeCloseForm(request.POST)
        try:
            if not form.is_valid():
                raise ValidationError(_("Give a valid closing date."))
            episode_close(
                actor=request.user,
                episode=episode,
                closed_on=form.cleaned_data["closed_on"],
                request=request,
            )
        except ValidationError as exc:
            for message in exc.messages:
                messages.error(request, message)
        else:
            messages.success(request, _("The episode is closed."))
        return redirect("episode_detail", pk=episode.pk)


class EpisodeReopenView(EpisodeMixin, View):
    """Undo a closing: the same episode goes on (see ``episode_reopen``)."""

    allowed_roles = frozenset({Role.THERAPIST})

    def post(self, request: HttpRequest, pk: int) -> HttpResponse:
        episode = self.episode(pk, write=True)
        try:
            episode_reopen(actor=request.user, episode=episode, request=request)
        except ValidationError as exc:
            for message in exc.messages:
                messages.error(request, message)
        else:
            messages.success(request, _("The episode is open again."))
        return redirect("episode_detail", pk=episode.pk)


class EpisodeRestartView(EpisodeMixin, View):
    """Reopen = start a new episode for the same client (the closed one stays closed)."""

    allowed_roles = frozenset({Role.THERAPIST})

    def post(self, request: HttpRequest, pk: int) -> HttpResponse:
        episode = self.episode(pk, write=True)
        form = EpisodeRestartForm(request.POST)
        if episode.status != Episode.Status.CLOSED:
            messages.error(request, _("The episode is still open."))
            return redirect("episode_detail", pk=episode.pk)
        try:
            if not form.is_valid():
                raise ValidationError(_("Give a valid start date."))
            new = episode_start(
                actor=request.user,
                client=episode.client,
                unit=episode.unit,
                started_on=form.cleaned_data["started_on"],
                request=request,
            )
        except ValidationError as exc:
            for message in exc.messages:
                messages.error(request, message)
            return redirect("episode_detail", pk=episode.pk)
        messages.success(request, _("A new episode is started."))
        return redirect("episode_detail", pk=new.pk)


class EpisodeTransferView(EpisodeMixin, View):
    """Hand the episode to a colleague of the same unit (access-logged by the service)."""

    allowed_roles = frozenset({Role.THERAPIST})
    template_name = "clients/episode_transfer.html"

    def get(self, request: HttpRequest, pk: int) -> HttpResponse:
        episode = self.episode(pk, write=True)
        self.log_view(episode)
        form = EpisodeTransferForm(candidates=transfer_candidates(episode=episode))
        return render(request, self.template_name, {"episode": episode, "form": form})

    def post(self, request: HttpRequest, pk: int) -> HttpResponse:
        episode = self.episode(pk, write=True)
        form = EpisodeTransferForm(request.POST, candidates=transfer_candidates(episode=episode))
        if form.is_valid():
            target = form.candidates.get(form.cleaned_data["to_therapist"])
            if target is None:  # pragma: no cover - the choices allow only candidates
                raise PermissionDenied
            try:
                episode_transfer(
                    actor=request.user, episode=episode, to_therapist=target, request=request
                )
            except ValidationError as exc:
                add_service_errors(form, exc)
            else:
                messages.success(
                    request,
                    _("The episode now belongs to %(name)s.")
                    % {"name": target.get_full_name() or target.username},
                )
                return redirect("caseload")
        return render(request, self.template_name, {"episode": episode, "form": form}, status=400)


def handover_message(given: list[tuple[Any, int]]) -> str:
    """How many episodes went to whom (those who got none are not named)."""

    def name(user: Any) -> str:
        return str(user.get_full_name() or user.username)

    got = [(user, n) for user, n in given if n]
    total = sum(n for _user, n in got)
    if len(got) == 1:
        return ngettext(
            "%(n)s episode now belongs to %(name)s.",
            "%(n)s episodes now belong to %(name)s.",
            total,
        ) % {"n": total, "name": name(got[0][0])}
    parts = [
        ngettext("%(n)s episode to %(name)s", "%(n)s episodes to %(name)s", n)
        % {"n": n, "name": name(user)}
        for user, n in got
    ]
    return _("Handed over: %(parts)s.") % {"parts": get_text_list(parts, _("and"))}


class HandoverView(TenantPageMixin, View):
    """Open episodes of colleagues who have left a unit, handed to one or more
    therapists there in one step (the data-quality panel's "ghost" episodes; several
    receivers share them out evenly, ``episodes_hand_over``). Counts and names of staff
    only: no client codes; each episode's transfer is access-logged by the service.
    The system owner sees every unit, a unit leader the units they lead."""

    allowed_roles = frozenset({Role.SYSTEM_OWNER, Role.UNIT_LEADER})
    template_name = "clients/handover.html"

    def _unit_ids(self) -> set[int] | None:
        if Role.SYSTEM_OWNER in self.roles:
            return None
        return {u.pk for u in units_of(self.request.user, self.organisation, Role.UNIT_LEADER)}

    def _page(self, rows: list[Any], forms: dict[tuple[int, int], Any], status: int = 200) -> Any:
        for row in rows:
            key = (row.therapist.pk, row.unit.pk)
            row_form = forms.get(key) or HandoverForm(
                receivers=row.receivers,
                receiver_open=row.receiver_open,
                initial={"unit": row.unit.pk, "from_therapist": row.therapist.pk},
            )
            row_form.auto_id = f"id_handover_{key[0]}_{key[1]}_%s"  # one page, many forms
            row.form = row_form
        return render(self.request, self.template_name, {"rows": rows}, status=status)

    def get(self, request: HttpRequest) -> HttpResponse:
        rows = handover_rows(organisation=self.organisation, unit_ids=self._unit_ids())
        return self._page(rows, {})

    def post(self, request: HttpRequest) -> HttpResponse:
        from datapolicy.models import Unit

        try:
            unit_id = int(request.POST.get("unit", ""))
            from_id = int(request.POST.get("from_therapist", ""))
        except ValueError:
            raise Http404 from None
        unit = Unit.objects.for_org(self.organisation).filter(pk=unit_id).first()
        if unit is None:
            raise Http404
        scope = self._unit_ids()
        if scope is not None and unit.pk not in scope:
            raise PermissionDenied
        rows = handover_rows(organisation=self.organisation, unit_ids={unit.pk})
        row = next((r for r in rows if r.therapist.pk == from_id), None)
        if row is None:
            # Not a colleague who has left with open episodes here (any more).
            messages.error(request, _("There are no open episodes to hand over."))
            return redirect("episode_handover")
        form = HandoverForm(request.POST, receivers=row.receivers, receiver_open=row.receiver_open)
        if form.is_valid():
            try:
                given = episodes_hand_over(
                    actor=request.user,
                    organisation=self.organisation,
                    unit=unit,
                    from_therapist=row.therapist,
                    to_therapists=form.chosen(),
                    request=request,
                )
            except ValidationError as exc:
                add_service_errors(form, exc)
            else:
                messages.success(request, handover_message(given))
                return redirect("episode_handover")
        all_rows = handover_rows(organisation=self.organisation, unit_ids=scope)
        return self._page(all_rows, {(from_id, unit.pk): form}, status=400)
