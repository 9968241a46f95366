"""``db.Prepared`` on PostgreSQL sends ``EXECUTE name(…)`` with its values written into the text
(``db._literal``, psycopg2's quoting cost a click 97 µs), and a connection serving clicks keeps
the click INSERT's settings for the session (``db.CLICK_SESSION``) until another request takes it."""

import datetime
import gc
import string
import weakref

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tracker.clickin import record
from tracker.db import click_timeouts, db, default_timeouts
from tracker.models import Click

from conftest import examples
from factories import add_flow

TEXT = st.text(st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",)), max_size=40)
FIXTURES_OK = settings(
    deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)  # the app fixture is made once for all the examples of a test: each writes its own rows
TRICKY = st.text(alphabet="'\\%s\"$1 é", max_size=12)  # quotes, backslashes, %s, $1 and the like


def stored_click(flow, **texts):
    """Write a click of ``flow`` with the click path's INSERT, its text columns set to ``texts``,
    and read it back from the database."""
    now = datetime.datetime.utcnow().replace(microsecond=123456)
    click_id = record.new_click_id()
    click = Click(click_id=click_id, flow=flow, created_at=now, ip="203.0.113.9", visitor="v", **texts)
    for name in ("params", "cookies"):
        setattr(click, name, {})
    click.cut = []
    record.insert_click(click)
    return Click.get_by_id(click_id)


@settings(FIXTURES_OK, max_examples=examples(150))
@given(sub1=st.one_of(TEXT, TRICKY), user_agent=st.one_of(TEXT, TRICKY), referrer=TRICKY)
@example(sub1="50% off %s", user_agent="O'Brien \\ %% $1", referrer="E'\\x41'")
def test_a_click_is_stored_with_exactly_the_text_it_came_with(app, sub1, user_agent, referrer):
    """Any text a visitor sends (quotes, backslashes, percent signs, placeholders, any script)
    comes back from the database as it went in, on both engines."""
    with db.connection_context():
        flow = add_flow()
        stored = stored_click(flow, sub1=sub1, user_agent=user_agent, referrer=referrer)
        assert (stored.sub1, stored.user_agent, stored.referrer) == (sub1, user_agent, referrer)
        assert stored.created_at.microsecond == 123456
        assert stored.is_unique is True


VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.datetimes(min_value=datetime.datetime(1, 1, 1)),
    st.text(st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",)), max_size=30),
    st.text(alphabet=string.printable.replace("\x00", ""), max_size=30),
    st.lists(st.datetimes(), max_size=3),
    st.decimals(allow_nan=False, allow_infinity=False),
)


@pytest.mark.postgres_only
@settings(FIXTURES_OK, max_examples=examples(300))
@given(value=VALUES)
def test_a_value_is_written_into_the_text_as_psycopg2_quotes_it(app, value):
    """``_literal`` writes what ``mogrify`` would, with ``%`` doubled for the parameterless send."""
    from tracker.db import _literal

    with db.connection_context():
        connection = db.connection()
        expected = connection.cursor().mogrify("%s", (value,)).decode("utf-8").replace("%", "%%")
        assert _literal(value, connection) == expected


@pytest.mark.postgres_only
def test_a_nul_in_a_value_is_refused_before_anything_is_sent(app):
    """PostgreSQL's text cannot hold NUL: refused as psycopg2 refuses it (ValueError)."""
    with db.connection_context():
        flow = add_flow()
        with pytest.raises(ValueError):
            stored_click(flow, sub1="a\x00b")
        assert Click.select().count() == 0


def session_settings():
    """The connection's synchronous_commit and enable_seqscan."""
    return tuple(
        db.execute_sql("SHOW %s" % name).fetchone()[0] for name in ("synchronous_commit", "enable_seqscan")
    )


@pytest.mark.postgres_only
def test_a_connection_serving_clicks_sends_the_insert_alone_and_gives_its_settings_back(app, counted):
    """After ``click_timeouts`` the click INSERT goes without its two SETs (the session has them);
    after ``default_timeouts`` (any other request) a commit waits for the WAL flush again and
    the INSERT carries its SETs once more."""
    with db.connection_context():
        flow = add_flow()
        click_timeouts(500)
        assert session_settings() == ("off", "off")
        del counted[:]
        stored_click(flow, sub1="a")
        inserts = [text for text in counted if "EXECUTE " in text and "PREPARE" not in text]
        assert len(inserts) == 1 and inserts[0].startswith("EXECUTE "), counted
        default_timeouts()
        assert session_settings() == ("on", "on")
        del counted[:]
        stored_click(flow, sub1="b")
        inserts = [text for text in counted if "EXECUTE " in text and "PREPARE" not in text]
        assert len(inserts) == 1 and inserts[0].startswith(record.CLICK_PREFIX + "EXECUTE "), counted


@pytest.mark.postgres_only
def test_a_connection_the_pool_lets_go_is_not_kept_alive_by_its_prepared_statements(app):
    """What a connection has prepared is kept beside it weakly: a cursor of it kept there once held
    every connection alive, and open on the server, after the pool let go of it (a restore then
    found the earlier tests' connections still there)."""
    with db.connection_context():
        stored_click(add_flow(), sub1="a")  # prepares the click INSERT on this connection
        gone = weakref.ref(db.connection())
    db.obj.close_all()
    gc.collect()
    assert gone() is None
