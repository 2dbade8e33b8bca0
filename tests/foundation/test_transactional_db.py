"""Transactional tests start from the migrated database, whatever test ran before them.

The migrated database holds rows that no test writes: the content types, the permissions
and the scales (measures/migrations/0002_load_scales.py). A transactional test ends with
a flush of every table. A serialized test (serialized rollback) writes the migrated rows
back before it starts and flushes without post_migrate afterwards. A flush *with*
post_migrate (what a transactional test without serialized rollback gets) writes the
content types and permissions again under new ids, and the next serialized test then
fails before it starts: writing back content type 1 collides with the same content type
under its new id (IntegrityError, duplicate key in django_content_type).
tests/conftest.py therefore gives every transactional test serialized rollback.

The three tests run in this order in every run (pytest-django runs the transactional
tests after the others, in file order): a plain transactional test, a serialized one,
and a plain one again. Without the conftest hook the second one fails with that
IntegrityError, and the third one finds neither scales nor content types.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.contrib.auth.models import Permission
from django.contrib.contenttypes.models import ContentType
from django.db import connection
from pytest_django.fixtures import validate_django_db

from datapolicy.models import Organisation
from measures.models import Scale
from tests.conftest import make_org


def _migrated(model: str) -> set[tuple[Any, ...]]:
    """The rows of one model as the migrations left them (the serialized snapshot that
    a serialized test writes back), as (pk, *field values)."""
    snapshot = json.loads(connection._test_serialized_contents)  # type: ignore[attr-defined]
    return {
        (row["pk"], *(json.dumps(v) for v in row["fields"].values()))
        for row in snapshot
        if row["model"] == model
    }


def _db_rows(model: type[Any]) -> set[tuple[Any, ...]]:
    from django.core import serializers

    rows = json.loads(serializers.serialize("json", model.objects.order_by("pk")))
    return {(row["pk"], *(json.dumps(v) for v in row["fields"].values())) for row in rows}


def _assert_the_migrated_database() -> None:
    assert not Organisation.objects.exists(), "a previous test's rows are still there"
    for model, label in (
        (ContentType, "contenttypes.contenttype"),
        (Permission, "auth.permission"),
        (Scale, "measures.scale"),
    ):
        expected = _migrated(label)
        assert expected, f"the migrations leave no {label}"
        assert _db_rows(model) == expected, label


@pytest.mark.django_db(transaction=True)
def test_a_plain_transactional_test_starts_from_the_migrated_database(request: Any) -> None:
    assert validate_django_db(request.node.get_closest_marker("django_db"))[3], (
        "tests/conftest.py did not give this transactional test serialized rollback"
    )
    _assert_the_migrated_database()
    make_org("alpha")  # rows for the flush at the end


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_serialized_test_after_it_writes_the_migrated_rows_back() -> None:
    _assert_the_migrated_database()
    make_org("alpha")


@pytest.mark.django_db(transaction=True)
def test_a_plain_transactional_test_after_a_serialized_one_has_them_too() -> None:
    _assert_the_migrated_database()
