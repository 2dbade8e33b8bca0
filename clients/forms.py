"""Forms of the therapist's client pages (thin: the services validate again)."""

from __future__ import annotations

from typing import Any

from django import forms
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from datapolicy.forms import CodeInput, WholeNumberInput
from datapolicy.models import AgeGroup


class DateInput(forms.DateInput):
    input_type = "date"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(format="%Y-%m-%d", **kwargs)


class ClientCreateForm(forms.Form):
    code = forms.CharField(
        label=_("Client code"),
        max_length=40,
        help_text=_("A code, never a CPR number or a name."),
        widget=CodeInput(capitals=True),
    )
    age_group = forms.ChoiceField(label=_("Age group"), choices=AgeGroup.choices)
    birth_year = forms.IntegerField(
        label=_("Birth year (optional)"),
        required=False,
        min_value=1900,
        max_value=2100,
        widget=WholeNumberInput,
    )
    started_on = forms.DateField(label=_("Episode start"), widget=DateInput())
    unit = forms.TypedChoiceField(
        label=_("Unit"), coerce=int, choices=(), required=False, empty_value=None
    )

    def __init__(self, *args: Any, units: list[Any], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["started_on"].initial = timezone.localdate()
        self.fields["unit"].choices = [(u.pk, u.name) for u in units]  # type: ignore[attr-defined]
        if len(units) == 1:
            self.fields["unit"].initial = units[0].pk
            self.fields["unit"].widget = forms.HiddenInput()


class EpisodeCloseForm(forms.Form):
    closed_on = forms.DateField(label=_("Closing date"), widget=DateInput())

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["closed_on"].initial = timezone.localdate()


class EpisodeTransferForm(forms.Form):
    to_therapist = forms.TypedChoiceField(label=_("New therapist"), coerce=int, choices=())

    def __init__(self, *args: Any, candidates: list[Any], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.candidates = {u.pk: u for u in candidates}
        # No colleague is preselected: handing a client over is a deliberate choice.
        self.fields["to_therapist"].choices = [  # type: ignore[attr-defined]
            ("", _("Choose a colleague")),
            *((u.pk, u.get_full_name() or u.username) for u in candidates),
        ]


class HandoverForm(forms.Form):
    """Hand a departed colleague's open episodes in one unit to one or more therapists
    there (checkboxes: touch-sized rows on the iPad, no script). Each choice shows how
    many open episodes that colleague has in the unit now (``receiver_open``)."""

    unit = forms.IntegerField(widget=forms.HiddenInput)
    from_therapist = forms.IntegerField(widget=forms.HiddenInput)
    to_therapist = forms.TypedMultipleChoiceField(
        label=_("Hand over to"),
        coerce=int,
        choices=(),
        widget=forms.CheckboxSelectMultiple,
        error_messages={
            "required": _("Choose at least one colleague."),
            "invalid_choice": _("Choose colleagues from the list: active therapists of the unit."),
        },
    )

    def __init__(
        self,
        *args: Any,
        receivers: list[Any],
        receiver_open: dict[int, int] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.receivers = {u.pk: u for u in receivers}
        counts = receiver_open or {}
        self.fields["to_therapist"].choices = [  # type: ignore[attr-defined]
            (u.pk, receiver_label(u, counts.get(u.pk, 0))) for u in receivers
        ]

    def chosen(self) -> list[Any]:
        """The chosen receivers (after ``is_valid``; the choices allow only receivers)."""
        return [self.receivers[pk] for pk in dict.fromkeys(self.cleaned_data["to_therapist"])]


def receiver_label(user: Any, open_episodes: int) -> str:
    return ngettext(
        "%(name)s (%(n)s open episode in the unit)",
        "%(name)s (%(n)s open episodes in the unit)",
        open_episodes,
    ) % {"name": user.get_full_name() or user.username, "n": open_episodes}


class EpisodeRestartForm(forms.Form):
    started_on = forms.DateField(label=_("Start of the new episode"), widget=DateInput())

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["started_on"].initial = timezone.localdate()


def add_service_errors(form: forms.Form, exc: Any) -> None:
    """Show a service's ValidationError on the form (by field where the form has it)."""
    if hasattr(exc, "error_dict"):
        for name, errors in exc.message_dict.items():
            for message in errors:
                form.add_error(name if name in form.fields else None, message)
    else:
        for message in exc.messages:
            form.add_error(None, message)
