"""Forms of the entry screens. Values are parsed and validated by the services
(``ScoreInput.parse``, ``session_record``); the forms only carry them."""

from __future__ import annotations

from typing import Any

from django import forms
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from clients.forms import DateInput


def _value_field(label: Any) -> forms.CharField:
    # Text, not a number input: a decimal comma (6,4) must be accepted as typed.
    return forms.CharField(
        label=label,
        required=False,
        max_length=6,
        widget=forms.TextInput(attrs={"inputmode": "decimal", "autocomplete": "off"}),
    )


class SessionStartForm(forms.Form):
    date = forms.DateField(label=_("Session date"), widget=DateInput())
    confirm_same_date = forms.BooleanField(
        label=_("Yes, add another session on this date"), required=False
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["date"].initial = timezone.localdate()


class PaperEntryForm(forms.Form):
    """Scores typed from a paper form: four items (cm) or a total, ORS and/or SRS."""

    date = forms.DateField(label=_("Session date"), widget=DateInput())
    ors_1 = _value_field("1")
    ors_2 = _value_field("2")
    ors_3 = _value_field("3")
    ors_4 = _value_field("4")
    ors_total = _value_field(_("or total"))
    srs_1 = _value_field("1")
    srs_2 = _value_field("2")
    srs_3 = _value_field("3")
    srs_4 = _value_field("4")
    srs_total = _value_field(_("or total"))
    confirm_same_date = forms.BooleanField(
        label=_("Yes, add another session on this date"), required=False
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["date"].initial = timezone.localdate()

    def raw(self, prefix: str) -> tuple[list[str], str]:
        data = self.cleaned_data
        return [data.get(f"{prefix}_{i}", "") for i in range(1, 5)], data.get(f"{prefix}_total", "")

    def given(self, prefix: str) -> bool:
        items, total = self.raw(prefix)
        return any(v.strip() for v in items) or bool(total.strip())


class PinForm(forms.Form):
    pin = forms.CharField(
        label=_("New PIN (4-8 digits)"),
        widget=forms.PasswordInput(attrs={"inputmode": "numeric", "autocomplete": "off"}),
    )
    pin_again = forms.CharField(
        label=_("The PIN again"),
        widget=forms.PasswordInput(attrs={"inputmode": "numeric", "autocomplete": "off"}),
    )
    password = forms.CharField(
        label=_("Your password"),
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
    )

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("pin") and data.get("pin") != data.get("pin_again"):
            self.add_error("pin_again", _("The two PINs are not the same."))
        return data


class UnlockForm(forms.Form):
    secret = forms.CharField(
        label=_("Therapist's PIN"),
        max_length=128,
        widget=forms.PasswordInput(attrs={"autocomplete": "off", "autofocus": True}),
    )

    def __init__(self, *args: Any, uses_pin: bool = True, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["secret"]
        if uses_pin:
            # The iPad's number pad for a PIN of digits.
            field.widget.attrs.update({"inputmode": "numeric", "pattern": "[0-9]*"})
        else:
            field.label = _("Therapist's password")
