"""No CPR numbers, anywhere: the validator and every entry path that exists."""

import datetime as dt

import pytest
from django.core.exceptions import ValidationError

from clients.models import Client
from clients.services import client_create, client_create_with_episode
from datapolicy.validators import looks_like_cpr


@pytest.mark.parametrize(
    "text",
    [
        "010190-1234",  # DDMMYY-XXXX
        "0101901234",  # ten digits forming a date
        "3112991234",
        "290200-1111",  # 29 Feb 2000 existed
        "Klient 150385 4321 henvist",  # inside a text, space separated
        "AB 240612-0001",
    ],
)
def test_it_recognises_cpr_shapes(text: str) -> None:
    assert looks_like_cpr(text)


@pytest.mark.parametrize(
    "text",
    [
        "AB-1001",
        "3201901234",  # day 32: not a date
        "0113901234",  # month 13
        "290201-1111",  # 29 Feb 2001 did not exist
        "12345678901",  # eleven digits: not a CPR shape
        "SAG-2024-00017",
        "",
    ],
)
def test_it_lets_other_codes_through(text: str) -> None:
    assert not looks_like_cpr(text)


def test_client_create_refuses_cpr_code_and_says_why(org1) -> None:
    with pytest.raises(ValidationError) as err:
        client_create(
            actor=org1.therapist_a, organisation=org1.org, code="010190-1234", age_group="adult"
        )
    assert "CPR" in str(err.value.message_dict["code"])
    assert not Client.objects.for_org(org1.org).exists()


def test_client_create_refuses_cpr_in_note(org1) -> None:
    with pytest.raises(ValidationError) as err:
        client_create(
            actor=org1.therapist_a,
            organisation=org1.org,
            code="AB-1",
            age_group="adult",
            note="cpr 0101901234",
        )
    assert "note" in err.value.message_dict
    assert not Client.objects.for_org(org1.org).exists()


def test_client_with_episode_refuses_cpr_and_saves_nothing(org1) -> None:
    with pytest.raises(ValidationError):
        client_create_with_episode(
            actor=org1.therapist_a,
            organisation=org1.org,
            unit=org1.unit,
            code="0101901234",
            age_group="adult",
            started_on=dt.date.today(),
        )
    assert not Client.objects.for_org(org1.org).exists()


def test_duplicate_code_is_refused_with_a_message(org1) -> None:
    client_create(actor=org1.therapist_a, organisation=org1.org, code="AB-1", age_group="adult")
    with pytest.raises(ValidationError) as err:
        client_create(actor=org1.therapist_a, organisation=org1.org, code="ab-1", age_group="adult")
    assert "code" in err.value.message_dict
