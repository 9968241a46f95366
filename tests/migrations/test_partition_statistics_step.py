"""Step 15 on a PostgreSQL database of version 14: each click partition's visitor and address
columns are analyzed as of many values (``operations.partitions.DISTINCT``), and the month a
buyer's test clicks of one address were analyzed in no longer sends every new visitor's click
through all of them."""

import pytest
from partition_helpers import generic_plan_rows, month_of_one_address
from test_click_copies_step import as_version_14

from tracker.db import db
from tracker.migrations import LATEST, current_version, upgrade

pytestmark = pytest.mark.postgres_only  # deselected on SQLite (tests/conftest.py)


def test_a_version_14_month_analyzed_with_one_address_is_analyzed_again_as_of_many(app):
    db.obj.close_all()  # a connection that has not planned the click INSERT yet
    with db.connection_context():
        as_version_14()
        dataset = month_of_one_address()
        read_before, _ = generic_plan_rows(*dataset)
    db.obj.close_all()  # the connections that planned the click INSERT under version 14
    assert upgrade() == (14, LATEST)
    with db.connection_context():
        assert current_version() == LATEST
        read_after, plan = generic_plan_rows(*dataset)
    assert read_before == 3001  # every click of the unique window, by the primary key's range
    assert read_after <= 1, plan
