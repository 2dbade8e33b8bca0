"""Forms of the data-policy administration pages (validation lives in the services)."""

from __future__ import annotations

from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from .models import AgeGroup, Grant
from .validators import reject_cpr


class DateInput(forms.DateInput):
    """An HTML date field: its value must be ISO (a Danish "03.12.2026" is dropped by
    the browser, so a default date would vanish)."""

    input_type = "date"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(format="%Y-%m-%d", **kwargs)


class CodeInput(forms.TextInput):
    """A client code or a user name as typed on the iPad: its keyboard must not "correct"
    it into another word (or another code), nor capitalise it (a code is shown in capitals,
    a user name in small letters: ``capitals``)."""

    def __init__(self, *, capitals: bool) -> None:
        super().__init__(
            attrs={
                "autocomplete": "off",
                "autocapitalize": "characters" if capitals else "none",
                "autocorrect": "off",
                "spellcheck": "false",
            }
        )


class WholeNumberInput(forms.NumberInput):
    """A whole-number field (a year, a count of days) that asks the on-screen keyboard
    for digits, as the score and PIN fields do (``inputmode``): ``type=number`` alone
    gives iOS's full keyboard on its symbols page, with letters a tap away."""

    def __init__(self, attrs: dict[str, Any] | None = None) -> None:
        super().__init__(attrs={"inputmode": "numeric", **(attrs or {})})


class DateTimeInput(forms.DateTimeInput):
    """An HTML datetime-local field (ISO value, as ``DateInput``)."""

    input_type = "datetime-local"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(format="%Y-%m-%dT%H:%M", **kwargs)


def person_label(user: Any) -> str:
    """A person by name, with the username to tell two namesakes apart."""
    name = user.get_full_name()
    return f"{name} ({user.username})" if name else str(user.username)


class PersonChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj: Any) -> str:
        return person_label(obj)


class PeopleChoiceField(forms.ModelMultipleChoiceField):
    def label_from_instance(self, obj: Any) -> str:
        return person_label(obj)


class GrantForm(forms.Form):
    kind = forms.ChoiceField(label=_("What is shared"), choices=Grant.Kind.choices)
    grantor: forms.ModelChoiceField = PersonChoiceField(
        label=_("Therapist who shares"), queryset=None, required=False
    )
    grantee: forms.ModelChoiceField = PersonChoiceField(label=_("Shared with"), queryset=None)
    episode: forms.ModelChoiceField = forms.ModelChoiceField(
        label=_("Client (episode)"), queryset=None, required=False
    )
    episode_number = forms.IntegerField(
        label=_("Episode number"),
        required=False,
        widget=WholeNumberInput,
        help_text=_("The episode number the therapist gives you (client codes are not shown)."),
    )
    purpose = forms.CharField(label=_("Purpose"), max_length=300, validators=[reject_cpr])
    starts_at = forms.DateTimeField(label=_("Starts"), widget=DateTimeInput)
    expires_at = forms.DateTimeField(label=_("Expires"), widget=DateTimeInput)

    def __init__(
        self, *args: Any, grantees: Any, therapists: Any, episodes: Any, admin: bool, **kw: Any
    ) -> None:
        super().__init__(*args, **kw)
        self.fields["grantee"].queryset = grantees  # type: ignore[attr-defined]
        self.fields["grantor"].queryset = therapists  # type: ignore[attr-defined]
        self.fields["episode"].queryset = episodes  # type: ignore[attr-defined]
        if admin:
            # SECURITY: the data-policy admin never sees client codes: episode by number.
            del self.fields["episode"]
            self.fields["grantor"].required = True
        else:
            del self.fields["grantor"]
            del self.fields["episode_number"]


class ConsentForm(forms.Form):
    client_code = forms.CharField(
        label=_("Client code"),
        max_length=40,
        validators=[reject_cpr],
        widget=CodeInput(capitals=True),
    )
    purpose = forms.CharField(label=_("Purpose"), max_length=300, validators=[reject_cpr])
    given_on = forms.DateField(label=_("Given on"), widget=DateInput)
    expires_on = forms.DateField(label=_("Expires on"), widget=DateInput, required=False)


def forget_cpr_values(form: forms.Form) -> None:
    """Blank every field a CPR-shaped value was refused in, so that the page shows the
    reason but never the value back (docs/datapolicy.md, "No CPR numbers": searches)."""
    if not form.is_bound:
        return
    refused = [
        name
        for name, errors in form.errors.as_data().items()
        if any(e.code == "cpr" for e in errors)
    ]
    if refused:
        data = dict(form.data.items())
        for name in refused:
            data[form.add_prefix(name)] = ""
        form.data = data


class AccessLogSearchForm(forms.Form):
    # SECURITY: the search is redirected to a URL (?username=...): never a CPR number.
    username = forms.CharField(
        label=_("User name"),
        required=False,
        max_length=150,
        validators=[reject_cpr],
        widget=CodeInput(capitals=False),
    )
    client_code = forms.CharField(
        label=_("Client code"),
        required=False,
        max_length=40,
        validators=[reject_cpr],
        widget=CodeInput(capitals=True),
    )
    date_from = forms.DateField(label=_("From"), required=False, widget=DateInput)
    date_to = forms.DateField(label=_("To"), required=False, widget=DateInput)
    action = forms.ChoiceField(label=_("Action"), required=False, choices=[])

    def __init__(self, *args: Any, actions: list[str], **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.fields["action"].choices = [("", _("All")), *[(a, a) for a in actions]]  # type: ignore[attr-defined]


class ReportForm(forms.Form):
    title = forms.CharField(label=_("Title"), max_length=200, validators=[reject_cpr])
    scope = forms.ChoiceField(
        label=_("Scope"), choices=[("org", _("The whole organisation")), ("unit", _("One unit"))]
    )
    unit_id = forms.TypedChoiceField(label=_("Unit"), coerce=int, required=False, choices=[])
    period = forms.ChoiceField(label=_("Period"), choices=[])
    age_group = forms.ChoiceField(
        label=_("Age group"), required=False, choices=[("", _("All")), *AgeGroup.choices]
    )

    def __init__(self, *args: Any, units: Any, periods: list[tuple[str, str]], **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.fields["unit_id"].choices = [("", "—"), *[(u.pk, u.name) for u in units]]  # type: ignore[attr-defined]
        self.fields["period"].choices = periods  # type: ignore[attr-defined]


class NoteForm(forms.Form):
    note = forms.CharField(label=_("Note"), max_length=300, required=False, validators=[reject_cpr])


class PolicySettingsForm(forms.Form):
    retention_days = forms.IntegerField(
        label=_("Keep inactive episodes for (days)"),
        required=False,
        min_value=1,
        widget=WholeNumberInput,
        help_text=_("Empty: keep until deleted by hand."),
    )
    small_cell_k = forms.IntegerField(
        label=_("Small-cell threshold k"), min_value=3, widget=WholeNumberInput
    )
    approvers: forms.ModelMultipleChoiceField = PeopleChoiceField(
        label=_("Report approvers"), queryset=None, required=False
    )

    def __init__(self, *args: Any, members: Any, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.fields["approvers"].queryset = members  # type: ignore[attr-defined]


class UserImportForm(forms.Form):
    file = forms.FileField(label=_("CSV file (name, email, unit, role)"))
