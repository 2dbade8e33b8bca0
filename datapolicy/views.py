"""Start pages: where each role lands after login, and the organisation chooser."""

from __future__ import annotations

import csv
import datetime as dt
import io
from typing import Any
from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.mixins import LoginRequiredMixin
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBadRequest, HttpResponseBase
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views import View
from django.views.generic import TemplateView

from .access import organisations_of
from .forms import (
    AccessLogSearchForm,
    ConsentForm,
    GrantForm,
    NoteForm,
    PolicySettingsForm,
    ReportForm,
    UserImportForm,
    forget_cpr_values,
)
from .middleware import SESSION_KEY
from .models import AgeGroup, Grant, Membership, Report, RetentionRun, Role, Unit
from .reports import (
    column_label,
    hidden_note,
    may_approve,
    may_withdraw,
    period_choices,
    report_approve,
    report_create,
    report_export,
    report_withdraw,
    spreadsheet_text,
)
from .retention import retention_run
from .scoping import TenantPageMixin
from .selectors import (
    access_log_actions,
    access_log_search,
    client_ids_for_code,
    client_ids_for_number,
    consents_for,
    grant_state,
    grantee_choices,
    grants_for,
    member_choices,
    memberships_by_unit,
    therapist_choices,
)
from .services import (
    Action,
    access_log_list_per_role,
    access_log_write,
    access_log_write_many,
    consent_record,
    consent_withdraw,
    grant_create,
    grant_revoke,
    membership_set_active,
    organisation_policy_update,
)
from .user_import import users_import_csv
from .validators import ascii_id

# Labels of the access log's codes (the log stores codes; pages and the client's
# export show these, in the request's language). An unknown code shows as it is.
ACTION_LABELS = {
    "view": gettext_lazy("Viewed"),
    "list": gettext_lazy("Listed"),
    "create": gettext_lazy("Created"),
    "update": gettext_lazy("Updated"),
    "delete": gettext_lazy("Deleted"),
    "close": gettext_lazy("Closed"),
    "reopen": gettext_lazy("Reopened"),
    "transfer": gettext_lazy("Transferred"),
    "export": gettext_lazy("Exported"),
    "grant": gettext_lazy("Shared"),
    "revoke": gettext_lazy("Revoked"),
    "withdraw": gettext_lazy("Withdrawn"),
    "approve": gettext_lazy("Approved"),
    "search": gettext_lazy("Searched"),
    "retention": gettext_lazy("Retention run"),
    "import": gettext_lazy("Imported"),
    "download": gettext_lazy("Downloaded"),
}
OBJECT_LABELS = {
    "client": gettext_lazy("Client"),
    "episode": gettext_lazy("Episode"),
    "session": gettext_lazy("Session"),
    "sessions": gettext_lazy("Sessions"),
    "sessiondraft": gettext_lazy("Session draft"),
    "caseload": gettext_lazy("Caseload"),
    "consent": gettext_lazy("Consent"),
    "grant": gettext_lazy("Share"),
    "report": gettext_lazy("Report"),
    "organisation": gettext_lazy("Organisation"),
    "unit": gettext_lazy("Unit"),
    "membership": gettext_lazy("Role (membership)"),
    "user": gettext_lazy("User"),
    "user_password": gettext_lazy("Password"),
    "accesslog": gettext_lazy("Access log"),
    "retentionrun": gettext_lazy("Retention run"),
    "therapist_figures": gettext_lazy("Therapist's figures"),
    "client_mode_pin": gettext_lazy("Client-mode PIN"),
    "apikey": gettext_lazy("API key"),
    "exportjob": gettext_lazy("Session export file"),
}
REPORT_EVENT_LABELS = {
    "created": gettext_lazy("Created"),
    "approved": gettext_lazy("Approved"),
    "exported": gettext_lazy("Exported"),
    "withdrawn": gettext_lazy("Withdrawn"),
}


# Labels of the keys and fields in an administrative change's details (the log keeps
# the names; a model field not listed here shows its own verbose name).
DETAIL_LABELS = {
    "user": gettext_lazy("User"),
    "role": gettext_lazy("Role"),
    "unit": gettext_lazy("Unit"),
    "name": gettext_lazy("Name"),
    "scopes": gettext_lazy("Scopes"),
    "report_approvers": gettext_lazy("Report approvers"),
    "users_created": gettext_lazy("Users created"),
    "memberships_created": gettext_lazy("Roles given"),
    "password": gettext_lazy("Password"),
}
# The models whose fields an entry's object type names (for their verbose names).
DETAIL_MODELS = {
    "organisation": "datapolicy.Organisation",
    "membership": "datapolicy.Membership",
    "user": "datapolicy.User",
    "user_password": "datapolicy.User",
    "unit": "datapolicy.Unit",
    "apikey": "datapolicy.ApiKey",
}


def _detail_label(name: str, object_type: str) -> str:
    from django.apps import apps
    from django.core.exceptions import FieldDoesNotExist
    from django.utils.text import capfirst

    if name in DETAIL_LABELS:
        return str(DETAIL_LABELS[name])
    model = DETAIL_MODELS.get(object_type)
    if model is not None:
        try:
            field = apps.get_model(model)._meta.get_field(name)
        except FieldDoesNotExist:
            pass
        else:
            return str(capfirst(getattr(field, "verbose_name", name)))
    return name


def _detail_value(name: str, value: Any) -> str:
    if value is None or value == "" or value == []:
        return "–"
    if isinstance(value, bool):
        return str(_("Yes") if value else _("No"))
    if isinstance(value, list):
        return ", ".join(_detail_value(name, v) for v in value)
    if name == "role":
        return role_label(str(value))
    return str(value)


def detail_lines(entry: Any) -> list[str]:
    """An administrative change's details as lines for the log page, in the request's
    language: whose role, then each changed field as "field: old → new"."""
    details = entry.details or {}
    if not isinstance(details, dict):
        return []
    kind = entry.object_type
    lines = []
    subject = [_detail_value(k, details[k]) for k in ("user", "role", "unit") if details.get(k)]
    if subject:
        lines.append(", ".join(subject))
    for name, change in (details.get("changes") or {}).items():
        old, new = change if isinstance(change, list) and len(change) == 2 else (None, change)
        lines.append(
            f"{_detail_label(name, kind)}: {_detail_value(name, old)} → {_detail_value(name, new)}"
        )
    for name in details.get("changed") or []:
        lines.append(
            _("%(field)s: changed (the value is not logged)") % {"field": _detail_label(name, kind)}
        )
    if details.get("users_created"):
        lines.append(
            f"{_detail_label('users_created', kind)}: "
            f"{_detail_value('users_created', details['users_created'])}"
        )
    if details.get("memberships_created"):
        given = [
            ", ".join(_detail_value(k, m.get(k)) for k in ("user", "role", "unit") if m.get(k))
            for m in details["memberships_created"]
            if isinstance(m, dict)
        ]
        lines.append(f"{_detail_label('memberships_created', kind)}: {'; '.join(given)}")
    shown = {"user", "role", "unit", "changes", "changed", "users_created", "memberships_created"}
    for name, value in details.items():
        if name not in shown:
            lines.append(f"{_detail_label(name, kind)}: {_detail_value(name, value)}")
    return lines


def action_label(code: str) -> str:
    return str(ACTION_LABELS.get(code, code))


def object_label(code: str) -> str:
    return str(OBJECT_LABELS.get(code, code))


def role_label(code: str) -> str:
    return str(Role(code).label) if code in Role.values else code


class HomeView(LoginRequiredMixin, View):
    """Role-aware start page: each role lands where its work is."""

    def get(self, request: HttpRequest) -> HttpResponse:
        roles: frozenset[str] = getattr(request, "roles", frozenset())
        if getattr(request, "organisation", None) is None:
            if request.user.is_platform_operator:  # type: ignore[union-attr]
                return redirect("operator_home")
            if organisations_of(request.user):
                return redirect("choose_organisation")
            raise PermissionDenied
        if Role.THERAPIST in roles:
            return redirect("caseload")
        if Role.UNIT_LEADER in roles or Role.MI_OFFICER in roles:
            return redirect("leader_home")
        if Role.DP_ADMIN in roles or Role.SYSTEM_OWNER in roles:
            return redirect("admin_home")
        raise PermissionDenied


class ChooseOrganisationView(LoginRequiredMixin, View):
    """Pick the active organisation explicitly (a user may serve several)."""

    def get(self, request: HttpRequest) -> HttpResponse:
        return render(
            request,
            "datapolicy/choose_organisation.html",
            {"organisations": organisations_of(request.user)},
        )

    def post(self, request: HttpRequest) -> HttpResponse:
        wanted = request.POST.get("organisation")
        for org in organisations_of(request.user):
            if str(org.pk) == wanted:
                request.session[SESSION_KEY] = org.pk
                return redirect("home")
        raise PermissionDenied


class LeaderHomeView(TenantPageMixin, TemplateView):
    """Leaders and the management-information officer start at the dashboards."""

    template_name = "datapolicy/leader_home.html"
    allowed_roles = frozenset({Role.UNIT_LEADER, Role.MI_OFFICER})
    scope = "org"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        """Counts of the shares the user holds now (the names are on the shares page:
        this start page stays anonymised)."""
        from .access import granted_episode_ids, live_grants

        ctx = super().get_context_data(**kwargs)
        user, org = self.request.user, self.organisation
        from stats.permissions import dashboard_units

        ctx["figures_shared"] = live_grants(user, org, Grant.Kind.OWN_FIGURES).count()
        ctx["graphs_shared"] = len(granted_episode_ids(user, org))
        # The dashboards one tap away (the same list as the dashboards' index).
        ctx["units"] = dashboard_units(user, org, self.roles)
        return ctx


class AdminHomeView(TenantPageMixin, TemplateView):
    """Data-policy admins and system owners start at their administration pages."""

    template_name = "datapolicy/admin_home.html"
    allowed_roles = frozenset({Role.DP_ADMIN, Role.SYSTEM_OWNER})
    scope = "org"


class OperatorHomeView(LoginRequiredMixin, TemplateView):
    """The platform operator sees only the cross-organisation benchmark."""

    template_name = "datapolicy/operator_home.html"

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        if request.user.is_authenticated and not request.user.is_platform_operator:  # type: ignore[union-attr]
            raise PermissionDenied
        return super().dispatch(request, *args, **kwargs)


# --- Data-policy administration (docs/datapolicy.md) ---------------------------------


class _PolicyPage(TenantPageMixin, View):
    """Shared helpers: errors from services onto the form, and a redirect back."""

    template_name = ""

    def roles_for_clients(self, client_ids: Any) -> dict[int, str]:
        """The role each listed client is read under (docs/datapolicy.md, "Which role"):
        one's own client as therapist; another's as data-policy admin where the page
        shows the admin the organisation's rows, else as the grant brought it (unit
        leader where held: ``acting_roles_for``)."""
        ids = {int(cid) for cid in client_ids if cid is not None}
        if Role.DP_ADMIN not in self.roles:
            return self.acting_roles_for(ids)
        own: set[int] = set()
        if ids and Role.THERAPIST in self.roles:
            from clients.selectors import own_clients

            own = set(
                own_clients(therapist=self.request.user, organisation=self.organisation)
                .filter(pk__in=ids)
                .values_list("pk", flat=True)
            )
        return {cid: str(Role.THERAPIST if cid in own else Role.DP_ADMIN) for cid in ids}

    def log_list(self, object_type: str, client_ids: Any) -> None:
        """A page's list of client-level data: one entry per client, under its role."""
        access_log_list_per_role(
            actor=self.request.user,
            organisation=self.organisation,
            object_type=object_type,
            roles=self.roles_for_clients(client_ids),
            empty_role=self.acting_role,
            request=self.request,
        )

    def render(self, **context: Any) -> HttpResponse:
        return render(self.request, self.template_name, context)

    @staticmethod
    def form_errors(form: Any, exc: ValidationError) -> None:
        if hasattr(exc, "error_dict"):
            for field, errors in exc.message_dict.items():
                form.add_error(field if field in form.fields else None, errors)
        else:
            form.add_error(None, exc.messages)


class GrantListView(_PolicyPage):
    """All shares with their history (data-policy admin); "Mine delinger" (a therapist's
    given and received shares; a unit leader's received ones)."""

    allowed_roles = frozenset({Role.THERAPIST, Role.UNIT_LEADER, Role.DP_ADMIN})
    template_name = "datapolicy/grants.html"

    page_size = 50

    def get(self, request: HttpRequest) -> HttpResponse:
        # 50 per page: only the page shown is rendered and logged.
        page = Paginator(
            grants_for(user=request.user, roles=self.roles, organisation=self.organisation),
            self.page_size,
        ).get_page(request.GET.get("page"))
        grants = list(page.object_list)
        # A client-graph share names one client's episode (by code for its therapist, by
        # number for the others): one entry per such client, so that the client's own
        # log shows the read; a list without any is one entry without a client.
        self.log_list("grant", [g.episode.client_id for g in grants if g.episode is not None])
        for g in grants:
            g.state = grant_state(g)  # type: ignore[attr-defined]
            # SECURITY: the client code only for the therapist whose client it is.
            g.show_code = g.episode_id is not None and g.episode.therapist_id == request.user.pk  # type: ignore[attr-defined, union-attr]
        return self.render(
            grants=grants,
            page=page,
            is_admin=Role.DP_ADMIN in self.roles,
            may_create=bool(self.roles & GrantCreateView.allowed_roles),
        )


class GrantCreateView(_PolicyPage):
    allowed_roles = frozenset({Role.THERAPIST, Role.DP_ADMIN})
    template_name = "datapolicy/grant_form.html"

    def _form(self, data: Any = None) -> GrantForm:
        from clients.models import Episode

        admin = Role.DP_ADMIN in self.roles
        org = self.organisation
        episodes = (
            Episode.objects.for_org(org).none()
            if admin
            else Episode.objects.for_org(org)
            .filter(therapist=self.request.user)
            .select_related("client")
            .order_by("client__code")
        )
        now = timezone.localtime().replace(second=0, microsecond=0)
        return GrantForm(
            data,
            grantees=grantee_choices(organisation=org, exclude_user=self.request.user),
            therapists=therapist_choices(organisation=org),
            episodes=episodes,
            admin=admin,
            initial={"starts_at": now, "expires_at": now + dt.timedelta(days=90)},
        )

    def render(self, **context: Any) -> HttpResponse:
        # The therapist's form lists their own episodes by client code: a read of
        # client-level data, logged per client listed (one insert), as on the shares page.
        form = context["form"]
        if "episode" in form.fields:
            self.log_list(
                "grant", form.fields["episode"].queryset.values_list("client_id", flat=True)
            )
        return super().render(**context)

    def get(self, request: HttpRequest) -> HttpResponse:
        return self.render(form=self._form())

    def post(self, request: HttpRequest) -> HttpResponse:
        from clients.models import Episode

        form = self._form(request.POST)
        if form.is_valid():
            d = form.cleaned_data
            episode = d.get("episode")
            if "episode_number" in form.fields and d.get("episode_number"):
                episode = (
                    Episode.objects.for_org(self.organisation)
                    .filter(pk=d["episode_number"])
                    .first()
                )
            try:
                grant_create(
                    actor=request.user,
                    organisation=self.organisation,
                    kind=d["kind"],
                    grantor=d.get("grantor") or request.user,
                    grantee=d["grantee"],
                    episode=episode,
                    purpose=d["purpose"],
                    starts_at=d["starts_at"],
                    expires_at=d["expires_at"],
                    request=request,
                )
            except ValidationError as exc:
                self.form_errors(form, exc)
            else:
                messages.success(request, _("The share is created."))
                return redirect("dp_grants")
        return self.render(form=form)


class GrantRevokeView(_PolicyPage):
    allowed_roles = frozenset({Role.THERAPIST, Role.DP_ADMIN})
    scope = "org"
    model = Grant

    def post(self, request: HttpRequest, pk: int) -> HttpResponse:
        qs = self.scoped_queryset()
        if Role.DP_ADMIN not in self.roles:
            # SECURITY: a therapist revokes only their own shares; others' are 404.
            qs = qs.filter(grantor=request.user)
        grant = self.get_scoped_object(qs, pk=pk)
        try:
            grant_revoke(actor=request.user, grant=grant, request=request)
            messages.success(request, _("The share is revoked."))
        except ValidationError as exc:
            messages.error(request, " ".join(exc.messages))
        return redirect("dp_grants")


class ConsentListView(_PolicyPage):
    """Consents: all (data-policy admin) or the therapist's own clients'; record one."""

    allowed_roles = frozenset({Role.THERAPIST, Role.DP_ADMIN})
    template_name = "datapolicy/consents.html"
    page_size = 50

    def _page(self, form: ConsentForm) -> HttpResponse:
        page = Paginator(
            consents_for(user=self.request.user, roles=self.roles, organisation=self.organisation),
            self.page_size,
        ).get_page(self.request.GET.get("page"))
        consents = list(page.object_list)
        # The list shows client codes: a read of client-level data, logged per client
        # shown (one insert; only the page shown) so that each client's own log shows it.
        self.log_list("consent", [c.client_id for c in consents])
        return self.render(form=form, consents=consents, page=page)

    def get(self, request: HttpRequest) -> HttpResponse:
        return self._page(ConsentForm(initial={"given_on": timezone.localdate()}))

    def post(self, request: HttpRequest) -> HttpResponse:
        from clients.models import Client
        from clients.selectors import own_clients

        form = ConsentForm(request.POST)
        if form.is_valid():
            d = form.cleaned_data
            # SECURITY: a therapist finds only their own clients (own_clients: not a
            # colleague's shared for supervision, which a grant lets them read, never act
            # for); the admin any client of the organisation. Unknown and not-yours read
            # the same.
            clients = (
                Client.objects.for_org(self.organisation)
                if Role.DP_ADMIN in self.roles
                else own_clients(therapist=request.user, organisation=self.organisation)
            )
            client = clients.filter(code__iexact=d["client_code"].strip()).first()
            if client is None:
                form.add_error("client_code", _("No client of yours has this code."))
            else:
                try:
                    consent_record(
                        actor=request.user,
                        organisation=self.organisation,
                        client=client,
                        purpose=d["purpose"],
                        given_on=d["given_on"],
                        expires_on=d.get("expires_on"),
                        request=request,
                    )
                except ValidationError as exc:
                    self.form_errors(form, exc)
                else:
                    messages.success(request, _("The consent is recorded."))
                    return redirect("dp_consents")
        return self._page(form)


class ConsentWithdrawView(_PolicyPage):
    allowed_roles = frozenset({Role.THERAPIST, Role.DP_ADMIN})

    def post(self, request: HttpRequest, pk: int) -> HttpResponse:
        qs = consents_for(user=request.user, roles=self.roles, organisation=self.organisation)
        consent = self.get_scoped_object(qs, pk=pk)
        try:
            consent_withdraw(actor=request.user, consent=consent, request=request)
            messages.success(request, _("The consent is withdrawn."))
        except ValidationError as exc:
            messages.error(request, " ".join(exc.messages))
        return redirect("dp_consents")


class AccessLogView(_PolicyPage):
    """Search the access log (data-policy admin): user, client code, dates, action."""

    allowed_roles = frozenset({Role.DP_ADMIN})
    template_name = "datapolicy/access_log.html"
    page_size = 50

    def post(self, request: HttpRequest) -> HttpResponse:
        """The search form is POSTed; a client code is turned into the client's number
        before redirecting, so that a code never stands in a URL (server logs, history)."""
        org = self.organisation
        form = _search_form(request.POST, org)
        if not form.is_valid():
            # SECURITY: a CPR-shaped value is refused with the reason, never shown back.
            forget_cpr_values(form)
            return self.render(form=form, entries=[], page=None, query="", client_ids=None)
        d = form.cleaned_data
        params: dict[str, Any] = {
            "username": d.get("username") or "",
            "action": d.get("action") or "",
            "date_from": d["date_from"].isoformat() if d.get("date_from") else "",
            "date_to": d["date_to"].isoformat() if d.get("date_to") else "",
        }
        if d.get("client_code"):
            # The client who has the code now and any erased client who had it (found
            # by the keyed hash on their erasure entry); 0: no such client, finds nothing.
            ids = client_ids_for_code(organisation=org, code=d["client_code"])
            params["client"] = ids or [0]
        query = urlencode({k: v for k, v in params.items() if v != ""}, doseq=True)
        return redirect(f"{request.path}?{query}")

    def get(self, request: HttpRequest) -> HttpResponse:
        org = self.organisation
        form = _search_form(request.GET or None, org)
        entries: Any = []
        page = None
        numbers = _client_params(request)
        client_ids = None
        if form.is_valid() or not request.GET:
            d = form.cleaned_data if request.GET else {}
            if numbers is not None:
                client_ids = [n for n in numbers if n > 0]
                if client_ids:
                    # Searching a client's log is itself a read of client-level data:
                    # one entry per client searched (one insert).
                    access_log_write_many(
                        actor=request.user,
                        organisation=org,
                        action=Action.SEARCH,
                        object_type="accesslog",
                        client_ids=client_ids,
                        role=self.acting_role,
                        request=request,
                    )
            qs = access_log_search(
                organisation=org,
                username=d.get("username", ""),
                client_ids=client_ids,
                date_from=d.get("date_from"),
                date_to=d.get("date_to"),
                action=d.get("action", ""),
            )
            page = Paginator(qs, self.page_size).get_page(request.GET.get("page"))
            entries = list(page.object_list)
            for e in entries:
                # Labels in the request's language; the log itself keeps the codes.
                e.role_label = role_label(e.role)
                e.action_label = action_label(e.action)
                e.object_label = object_label(e.object_type)
                e.detail_lines = detail_lines(e)
        query = request.GET.copy()
        query.pop("page", None)
        return self.render(
            form=form, entries=entries, page=page, query=query.urlencode(), client_ids=client_ids
        )


def _search_form(data: Any, organisation: Any) -> AccessLogSearchForm:
    """The log search form; its action filter shows labels (the values stay codes)."""
    actions = access_log_actions(organisation=organisation)
    form = AccessLogSearchForm(data, actions=actions)
    form.fields["action"].choices = [  # type: ignore[attr-defined]
        ("", _("All")),
        *[(a, action_label(a)) for a in actions],
    ]
    return form


def _client_params(request: HttpRequest) -> list[int] | None:
    """The clients' numbers from ``?client=`` (one or more: a code given again after an
    erasure names several); numbers only, never codes, in URLs. A bad value is 0."""
    raw = request.GET.getlist("client")
    if not raw:
        return None
    return sorted({ascii_id(value) or 0 for value in raw[:20]})


def _client_param(request: HttpRequest) -> int | None:
    """The client's number from ``?client=`` (numbers only, never codes, in URLs)."""
    raw = request.GET.get("client")
    if raw is None:
        return None
    try:
        return max(int(raw), 0)
    except ValueError:
        return 0


class AccessLogExportView(_PolicyPage):
    """One client's log as CSV (the client's right of access). The export is logged."""

    allowed_roles = frozenset({Role.DP_ADMIN})

    def get(self, request: HttpRequest) -> HttpResponse:
        org = self.organisation
        client_id = _client_param(request)
        if client_id is None:
            return HttpResponseBadRequest(_("Give a client code."))
        # SECURITY: only a client of this organisation (or one whose entries remain here
        # after erasure); anything else is 404.
        if not client_id or not (client_ids_for_number(organisation=org, client_id=client_id)):
            raise Http404
        client_ids = [client_id]
        access_log_write(
            actor=request.user,
            organisation=org,
            action=Action.EXPORT,
            object_type="accesslog",
            client_id=client_ids[0],
            role=self.acting_role,
            request=request,
        )
        rows = access_log_search(organisation=org, client_ids=client_ids).order_by("at", "pk")
        buf = io.StringIO()
        writer = csv.writer(buf)
        # For the client: headers and labels in the request's language, times in local
        # time (as the page shows them, with the UTC offset), and every text cell
        # guarded against spreadsheet formulas (user names may start with - + @).
        writer.writerow(
            [
                _("Time"),
                _("User"),
                _("Role"),
                _("Action"),
                _("Object"),
                _("Object no."),
                "IP",
                _("Address (path)"),
            ]
        )
        for e in rows:
            writer.writerow(
                [
                    spreadsheet_text(v)
                    for v in (
                        timezone.localtime(e.at).isoformat(sep=" ", timespec="seconds"),
                        e.username,
                        role_label(e.role),
                        action_label(e.action),
                        object_label(e.object_type),
                        e.object_id if e.object_id is not None else "",
                        e.ip or "",
                        e.path,
                    )
                ]
            )
        response = HttpResponse(buf.getvalue(), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = (
            f'attachment; filename="access-log-client-{client_ids[0]}.csv"'
        )
        return response


REPORT_READERS = frozenset({Role.UNIT_LEADER, Role.MI_OFFICER, Role.DP_ADMIN, Role.SYSTEM_OWNER})


class ReportListView(_PolicyPage):
    allowed_roles = REPORT_READERS
    template_name = "datapolicy/reports.html"
    scope = "org"
    model = Report

    def get(self, request: HttpRequest) -> HttpResponse:
        reports = (
            self.scoped_queryset()
            .defer("episode_fingerprint")
            .select_related("created_by")
            .order_by("-created_at")
        )
        return self.render(reports=reports, may_create=Role.MI_OFFICER in self.roles)


class ReportCreateView(_PolicyPage):
    allowed_roles = frozenset({Role.MI_OFFICER})
    template_name = "datapolicy/report_form.html"

    def _form(self, data: Any = None) -> ReportForm:
        return ReportForm(
            data,
            units=Unit.objects.for_org(self.organisation).order_by("name"),
            periods=period_choices(timezone.localdate()),
        )

    def get(self, request: HttpRequest) -> HttpResponse:
        return self.render(form=self._form())

    def post(self, request: HttpRequest) -> HttpResponse:
        form = self._form(request.POST)
        if form.is_valid():
            d = form.cleaned_data
            try:
                report = report_create(
                    actor=request.user,
                    organisation=self.organisation,
                    title=d["title"],
                    selection={
                        "scope": d["scope"],
                        "unit_id": d.get("unit_id"),
                        "period": d["period"],
                        "age_group": d.get("age_group", ""),
                    },
                    request=request,
                )
            except ValidationError as exc:
                self.form_errors(form, exc)
            else:
                messages.success(request, _("The draft report is saved with its figures."))
                return redirect("dp_report", pk=report.pk)
        return self.render(form=form)


class ReportDetailView(_PolicyPage):
    allowed_roles = REPORT_READERS
    template_name = "datapolicy/report_detail.html"
    scope = "org"
    model = Report

    def get(self, request: HttpRequest, pk: int) -> HttpResponse:
        report = self.get_scoped_object(pk=pk)
        unit = None
        if report.selection.get("unit_id"):
            unit = (
                Unit.objects.for_org(self.organisation)
                .filter(pk=report.selection["unit_id"])
                .first()
            )
        figures = report.figures
        rows = [
            {
                "label": _("Active") if r["active"] else _("Inactive"),
                # (value, hidden): every hidden cell reads "hidden" with one note, whatever
                # its reason (reports.hidden_note); a missing mean "–".
                "cells": [
                    (None, True) if c in r["hidden"] else (r["values"].get(c), False)
                    for c in figures.get("columns", [])
                ],
            }
            for r in figures.get("rows", [])
        ]
        return self.render(
            report=report,
            unit=unit,
            rows=rows,
            columns=[column_label(c) for c in figures.get("columns", [])],
            hidden_note=hidden_note(int(figures.get("k", 0)))
            if any(r.get("hidden") for r in figures.get("rows", []))
            else "",
            age_group=AgeGroup(report.selection["age_group"]).label
            if report.selection.get("age_group")
            else "",
            trajectory=figures.get("trajectory", []),
            events=[
                (e, REPORT_EVENT_LABELS.get(e.action, e.action))
                for e in report.events.select_related("actor")
            ],
            may_approve=report.status == Report.Status.DRAFT and may_approve(request.user, report),
            # Only to those the withdrawal admits (the others would get a bare 403).
            may_withdraw=report.status != Report.Status.WITHDRAWN
            and may_withdraw(request.user, report),
            may_export=report.status == Report.Status.APPROVED
            and bool(self.roles & REPORT_EXPORTERS),
        )


REPORT_EXPORTERS = frozenset({Role.MI_OFFICER, Role.DP_ADMIN})


class _ReportStepView(_PolicyPage):
    """One step of a report's approval workflow; the service checks who may take it."""

    allowed_roles = REPORT_READERS
    scope = "org"
    model = Report
    service: Any = None
    done_message: Any = ""

    def post(self, request: HttpRequest, pk: int) -> HttpResponse:
        report = self.get_scoped_object(pk=pk)
        form = NoteForm(request.POST)
        if not form.is_valid():
            # The step is not taken with its note dropped: the note is refused (e.g. a
            # CPR number, never echoed) and the step waits until it is given again.
            for errors in form.errors.values():
                messages.error(request, " ".join(str(e) for e in errors))
            return redirect("dp_report", pk=report.pk)
        try:
            type(self).service(
                actor=request.user, report=report, note=form.cleaned_data["note"], request=request
            )
            messages.success(request, self.done_message)
        except ValidationError as exc:
            messages.error(request, " ".join(exc.messages))
        return redirect("dp_report", pk=report.pk)


class ReportApproveView(_ReportStepView):
    service = report_approve
    done_message = gettext_lazy("The report is approved.")


class ReportWithdrawView(_ReportStepView):
    service = report_withdraw
    done_message = gettext_lazy("The report is withdrawn.")


class ReportExportView(_PolicyPage):
    """XLSX of an approved report; a draft or withdrawn report is refused (403)."""

    allowed_roles = REPORT_EXPORTERS
    scope = "org"
    model = Report

    def get(self, request: HttpRequest, pk: int) -> HttpResponse:
        report = self.get_scoped_object(pk=pk)
        data = report_export(actor=request.user, report=report, request=request)
        response = HttpResponse(
            data,
            content_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        )
        response["Content-Disposition"] = f'attachment; filename="rapport-{report.pk}.xlsx"'
        return response


class PolicySettingsView(_PolicyPage):
    """Retention, k and the report approvers; the retention run history."""

    allowed_roles = frozenset({Role.DP_ADMIN})
    template_name = "datapolicy/settings.html"

    def _form(self, data: Any = None) -> PolicySettingsForm:
        org = self.organisation
        return PolicySettingsForm(
            data,
            members=member_choices(organisation=org),
            initial={
                "retention_days": org.retention_days,
                "small_cell_k": org.small_cell_k,
                "approvers": list(org.report_approvers.all()),
            },
        )

    def _page(self, form: PolicySettingsForm) -> HttpResponse:
        runs = RetentionRun.objects.for_org(self.organisation).order_by("-ran_at", "-pk")[:50]
        return self.render(form=form, runs=runs)

    def get(self, request: HttpRequest) -> HttpResponse:
        return self._page(self._form())

    def post(self, request: HttpRequest) -> HttpResponse:
        form = self._form(request.POST)
        if form.is_valid():
            d = form.cleaned_data
            try:
                organisation_policy_update(
                    actor=request.user,
                    organisation=self.organisation,
                    retention_days=d.get("retention_days"),
                    small_cell_k=d["small_cell_k"],
                    approvers=list(d["approvers"]),
                    request=request,
                )
            except ValidationError as exc:
                self.form_errors(form, exc)
            else:
                messages.success(request, _("The settings are saved."))
                return redirect("dp_settings")
        return self._page(form)


class RetentionRunView(_PolicyPage):
    """Run retention now (the same job as the nightly one)."""

    allowed_roles = frozenset({Role.DP_ADMIN})

    def post(self, request: HttpRequest) -> HttpResponse:
        run = retention_run(
            organisation=self.organisation,
            today=timezone.localdate(),
            actor=request.user,
            role=self.acting_role,
            request=request,
        )
        messages.success(
            request,
            _("Retention run: %(episodes)s episodes and %(clients)s clients deleted.")
            % {"episodes": run.episodes_deleted, "clients": run.clients_deleted},
        )
        return redirect("dp_settings")


class MembershipListView(_PolicyPage):
    """Memberships and roles per unit: the system owner manages, the admin reads."""

    allowed_roles = frozenset({Role.SYSTEM_OWNER, Role.DP_ADMIN})
    template_name = "datapolicy/memberships.html"

    def get(self, request: HttpRequest) -> HttpResponse:
        return self.render(
            groups=memberships_by_unit(organisation=self.organisation),
            may_manage=Role.SYSTEM_OWNER in self.roles,
        )


class MembershipActiveView(_PolicyPage):
    """The system owner activates or deactivates one membership."""

    allowed_roles = frozenset({Role.SYSTEM_OWNER})
    scope = "org"
    model = Membership

    def post(self, request: HttpRequest, pk: int) -> HttpResponse:
        membership = self.get_scoped_object(pk=pk)
        try:
            membership_set_active(
                actor=request.user,
                membership=membership,
                active=request.POST.get("active") == "1",
                request=request,
            )
        except ValidationError as exc:
            messages.error(request, " ".join(exc.messages))
        return redirect("dp_memberships")


class UserImportView(_PolicyPage):
    allowed_roles = frozenset({Role.SYSTEM_OWNER})
    template_name = "datapolicy/user_import.html"
    max_bytes = 1_000_000

    def get(self, request: HttpRequest) -> HttpResponse:
        return self.render(form=UserImportForm())

    def post(self, request: HttpRequest) -> HttpResponse:
        form = UserImportForm(request.POST, request.FILES)
        errors: list[str] = []
        if form.is_valid():
            upload = form.cleaned_data["file"]
            if upload.size > self.max_bytes:
                errors = [_("The file is too large.")]
            else:
                try:
                    text = upload.read().decode("utf-8-sig")
                except UnicodeDecodeError:
                    errors = [_("The file must be UTF-8 text.")]
                else:
                    result = users_import_csv(
                        actor=request.user,
                        organisation=self.organisation,
                        text=text,
                        request=request,
                    )
                    errors = result.errors
                    if not errors:
                        messages.success(
                            request,
                            _(
                                "%(users)s users and %(memberships)s memberships created. "
                                "New users get an e-mail with a link to choose their password."
                            )
                            % {
                                "users": result.created_users,
                                "memberships": result.created_memberships,
                            },
                        )
                        return redirect("dp_memberships")
        return self.render(form=form, errors=errors)
