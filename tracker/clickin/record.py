"""Where a click becomes a row: a request-free ``Visitor`` on a flow is captured into a
``Click`` (every field of DESIGN §4.1) and written.

``record_click`` is the write path of ``GET /r/<key>``: one INSERT (plus, when the flow
has click postbacks, their delivery rows in the same short transaction). The flow's routes
(``routing``) decide where the click goes before it is written; ``record_lander_click`` notes
the visitor's way on from a lander (``GET /click``).
"""

import datetime
import logging
import os
import time
from decimal import Decimal, InvalidOperation

from peewee import SQL, CharField, TextField, fn

from ..db import ASYNC_COMMIT, INDEXED, Prepared, db, has_returning, is_postgres
from ..models import SUB_NAMES, UTM_NAMES, VAR_NAMES, Click, Conversion, Flow, OrphanVisit, utcnow
from ..postbacks import outbox
from ..reports import rollups
from .routing import destination_url, route_click
from .visitor import clean_text, first_language, visitor_hash

logger = logging.getLogger(__name__)

# With no traffic source, the first of these is the click's external_id (MomentScience's own
# click id arrives as click_id).
EXTERNAL_ID_PARAMS = ("external_id", "clickid", "click_id", "fbclid", "gclid", "ttclid", "ScCid")
MAX_COOKIE = 500
UNIQUE_WINDOW = datetime.timedelta(hours=24)
ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyz"


def new_click_id(now=None):
    """A 25-character id of [0-9a-z]: 9 characters of milliseconds, then 16 random ones.

    Time-ordered (index inserts stay local) and unguessable (about 82 random bits).
    """
    ms = int((now or time.time()) * 1000)
    rand = int.from_bytes(os.urandom(11), "big")
    return base36(ms, 9) + base36(rand, 16)


DIGIT_PAIRS = [a + b for a in ALPHABET for b in ALPHABET]  # "00" … "zz": two digits a step


def base36(number, width):
    """The last ``width`` base-36 digits of ``number``, zero-padded."""
    pairs = []
    for _ in range((width + 1) // 2):
        number, pair = divmod(number, 36 * 36)
        pairs.append(DIGIT_PAIRS[pair])
    return "".join(reversed(pairs))[-width:]


def capture(flow, visitor, click_id, now, geoip=None, parse_user_agent=None, bots=None):
    """Build the (unsaved) ``Click`` for ``visitor`` on ``flow``: every field of the click-in.
    ``bots`` (``enrichment.bots.BotLists``) adds the user's bot lists to user-agents' verdict."""
    params = visitor.params
    source = getattr(flow, "source", None)
    fields = {
        "click_id": click_id,
        "flow": flow.id,
        "created_at": now,
        "ip": visitor.ip,
        "user_agent": visitor.user_agent,
        "referrer": visitor.referrer,
        "language": first_language(visitor.accept_language),
        "visitor": visitor_hash(visitor.ip, visitor.user_agent),
        "params": params,
        "cookies": platform_cookies(visitor.cookies, params, now),
        "cut": list(visitor.cut),
    }
    mapping = dict(source.vars or {}) if source is not None else {}
    columns = {name: name for name in SUB_NAMES + UTM_NAMES}
    columns.update({name: mapping.get(name) or name for name in VAR_NAMES})
    if source is not None and source.click_id_param:
        columns["external_id"] = source.click_id_param
    else:
        columns["external_id"] = next((n for n in EXTERNAL_ID_PARAMS if params.get(n)), "")
    for column, param in columns.items():
        value = params.get(param, "")
        if len(value) > 255:
            value = value[:255]
            fields["cut"].append(column)
        fields[column] = value
    fields["cost"] = parse_cost(params.get("cost"))
    if geoip is not None:
        fields.update(geoip.lookup(visitor.ip))
    if parse_user_agent is not None:
        fields.update(parse_user_agent(visitor.user_agent))
    if bots is not None:
        fields["is_bot"] = bots.is_bot(visitor.ip, visitor.user_agent, fields.get("is_bot", False))
    # What Click(**fields) does, without its 50 descriptor calls (a tenth of a click's time)
    # and without computing the defaults that fields replaces.
    click = Click(__no_default__=True)
    click.__data__ = {**CLICK_DEFAULTS, **fields}
    return click


def platform_cookies(cookies, params, now):
    """The ad platforms' cookies, with the click ids of the URL standing in for those missing
    (DESIGN §4.1): on the tracker's own domain the visitor has none, so ``{req.cookie._fbc}``
    and ``{req.cookie.ttclid}`` would be empty. ``fbclid`` gives Meta's documented
    ``fb.1.<click time in ms>.<fbclid>``; ``ttclid`` and ``ScCid`` stand as they are."""
    fbclid, ttclid, sccid = params.get("fbclid"), params.get("ttclid"), params.get("ScCid")
    if not (fbclid or ttclid or sccid):
        return cookies  # the common click: nothing to add, nothing copied
    cookies = dict(cookies)
    if fbclid and not cookies.get("_fbc"):
        ms = int(now.replace(tzinfo=datetime.timezone.utc).timestamp() * 1000)
        cookies["_fbc"] = ("fb.1.%d.%s" % (ms, fbclid))[:MAX_COOKIE]
    if ttclid and not cookies.get("ttclid"):
        cookies["ttclid"] = ttclid[:MAX_COOKIE]
    if sccid and not cookies.get("ScCid"):
        cookies["ScCid"] = sccid[:MAX_COOKIE]
    return cookies


# The columns' constant defaults; those computed per row (a time, an empty dict or list)
# are all set by capture, which must stay so: checked here, when the module loads.
CLICK_DEFAULTS = {
    column.name: column.default
    for column in Click._meta.sorted_fields
    if column.default is not None and not callable(column.default)
}
assert {column.name for column in Click._meta.sorted_fields if callable(column.default)} <= {
    "created_at",
    "params",
    "cookies",
    "cut",
}, "capture() must set every computed default"


def parse_cost(value):
    """The ``cost`` parameter as a non-negative money amount; anything unreadable is 0."""
    if not value:
        return Decimal(0)
    try:
        cost = Decimal(value.strip().replace(",", "."))
    except InvalidOperation:
        return Decimal(0)
    if not cost.is_finite() or cost < 0 or cost > 10**9:
        return Decimal(0)
    return cost


# SAME_IP: on PostgreSQL the visitor's earlier clicks are asked for with their IP as well (the
# visitor hash is made of the IP and the user agent: the answer is the same). A prepared
# statement's generic plan is made once per connection from the statistics of that moment; made
# while a partition's were those of an empty table (a new month, a server without autovacuum),
# it went by the (flow_id, ip, created_at) index with only the flow and the time: every click of
# the flow in the unique window read for each click (measured at 20,000 clicks of one flow with
# an empty month's statistics: 9–13 ms of server CPU a click INSERT; with the IP, 0.4 ms, as with
# fresh statistics). The flow's other indexes can still win that plan when it is made while the
# month holds its first thousand or so clicks ((flow_id, external_id, created_at), the smallest:
# 10–17 ms a click at 3,000–20,000 clicks, measured): the worker's ANALYZE (statistics.tend, or
# autovacuum) makes it again within a minute (README, "the click table partitioned by month").
def insert_click_query(slot):
    """The INSERT of a click, every column a parameter; ``is_unique`` is decided inside it
    (no click of this visitor on this flow since ``unique_since``), so that the click write
    stays one statement and two workers' clicks can't both count as the first on SQLite."""
    seen = Click.select(SQL("1")).where(
        Click.flow == slot("flow"), Click.visitor == slot("visitor"), Click.created_at > slot("unique_since")
    )
    if is_postgres():  # the window's months and days only (operations.partitions.VISITOR_INDEX)
        seen = seen.where(
            Click.click_id >= slot("ids_since"),
            Click.click_id < slot("ids_until"),  # not the months made ahead
            click_day() == fn.ANY(slot("days")),
            Click.ip == slot("ip"),  # see SAME_IP
        )
    columns = {column: slot(column.name) for column in Click._meta.sorted_fields}
    columns[Click.is_unique] = ~fn.EXISTS(seen)
    return Click.insert(columns)


# Their SQL generated once per engine (see db.Prepared). SQLite before 3.35 has no RETURNING.
# Committed as SQLite commits them (synchronous=NORMAL), on PostgreSQL too: db.ASYNC_COMMIT.
# Planned with db.INDEXED: its EXISTS reads the visitor's clicks by an index, even when the
# connection planned it while the month's partition was empty.
CLICK_PREFIX = ASYNC_COMMIT + INDEXED
INSERT_CLICK = Prepared(lambda slot: insert_click_query(slot).returning(Click.is_unique), CLICK_PREFIX)
INSERT_CLICK_NO_RETURNING = Prepared(lambda slot: insert_click_query(slot).returning(), CLICK_PREFIX)


# The write-behind (spool.write_batched) writes a batch with one INSERT on PostgreSQL
# (insert_batch_sql), and with INSERT_CLICK_NO_RETURNING a click after the other on SQLite
# (Prepared.execute_many; a statement there costs no round trip).
def insert_batch_sql():
    """PostgreSQL: one INSERT of a whole write-behind batch, given as one JSON array of its spool
    lines (``%s``, spool.encode's ``{"v":1,"click":{…}}``): the server parses the values, so the
    drain does not (decoding the lines, their times, and psycopg2 quoting 55 parameters a click
    were a fifth of a web worker's time, py-spy). ``is_unique`` as the click path decides it: no
    click of the visitor on the flow since ``unique_since`` in the table (a scalar subquery with
    LIMIT 1: a probe per click, never a join over the month; db.INDEXED goes with it) nor earlier
    in the batch (the lines in file order, oldest first). A click stored already (a batch written
    again after a crash) is skipped. Returns each written click's ``(created_at, flow_id)``.

    Its EXISTS names no lower click id (the click path's INSERT does, for partition pruning):
    with one, the plan made on a month analyzed empty took the primary key's range of the unique
    window, every click of the last day read for each click (13,532 a click in the bench). Without
    it each month's partition is probed by the (flow_id, ip, created_at) index (SAME_IP): a few
    blocks a month kept (tests/operations/test_partitions.py)."""
    computed = (Click.flow, Click.is_unique)  # flow_id named apart (the line says flow), is_unique made
    columns = [f.column_name for f in Click._meta.sorted_fields if not any(f is c for c in computed)]
    listed = ", ".join('"%s"' % name for name in columns)
    return (
        "INSERT INTO click ({listed}, flow_id, is_unique) "
        "SELECT {outer}, c.flow_id, "
        "(SELECT 1 FROM click o WHERE o.flow_id = c.flow_id AND o.visitor = c.visitor "
        "AND o.created_at > c.unique_since "
        "AND date_trunc('day', o.created_at) = ANY (c.days) AND o.ip = c.ip LIMIT 1) IS NULL "
        "AND COALESCE(max(c.created_at) OVER earlier <= c.unique_since, TRUE) "
        "FROM (SELECT {inner}, (l.line #>> '{{click,flow}}')::integer AS flow_id, l.n, "
        "(l.line #>> '{{click,unique_since}}')::timestamp AS unique_since, "
        "ARRAY(SELECT jsonb_array_elements_text(l.line #> '{{click,days}}'))::timestamp[] AS days "
        "FROM jsonb_array_elements(%s::jsonb) WITH ORDINALITY AS l(line, n), "
        "jsonb_populate_record(NULL::click, l.line -> 'click') AS r) AS c "
        "WINDOW earlier AS (PARTITION BY c.flow_id, c.visitor ORDER BY c.n "
        "ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) "
        "ON CONFLICT (click_id) DO NOTHING RETURNING created_at, flow_id"
    ).format(
        listed=listed,
        outer=", ".join('c."%s"' % name for name in columns),
        inner=", ".join('r."%s"' % name for name in columns),
    )


INSERT_BATCH_SQL = insert_batch_sql()


def insert_batch(lines):
    """PostgreSQL: write the write-behind clicks of spool ``lines`` (bytes, oldest first) with one
    INSERT (``insert_batch_sql``), in the caller's transaction; their ``(created_at, flow_id)``."""
    batch = b"[" + b",".join(lines) + b"]"
    return db.execute_sql(CLICK_PREFIX + INSERT_BATCH_SQL, (batch.decode(),)).fetchall()


# Each column and its conversion to database form; None for text columns, which capture
# fills with str only (40 of the 51 columns: converting them was a tenth of a click's time).
CLICK_TO_DB = [
    (column.name, None if type(column) in (CharField, TextField) else column.db_value)
    for column in Click._meta.sorted_fields
]


def click_values(click, window=UNIQUE_WINDOW):
    """The INSERT's parameters for ``click``: every column in database form, and the start of
    the unique window (what the spool keeps of a click the database could not take)."""
    data = click.__data__
    values = {name: data.get(name) if to_db is None else to_db(data.get(name)) for name, to_db in CLICK_TO_DB}
    values["unique_since"] = Click.created_at.db_value(click.created_at - window)
    if is_postgres():  # the bounds insert_click_query adds there
        values["ids_since"] = ids_since(click.created_at - window)
        values["ids_until"] = ids_until(click.click_id)
        values["days"] = days_of(click.created_at - window, click.created_at)
    return values


def insert_values(values, returning=None):
    """Run the click INSERT with ``values`` (``click_values``); returns the click's
    ``is_unique``. ``returning``: whether the engine has INSERT … RETURNING (default: ask it)."""
    if has_returning() if returning is None else returning:
        # fetchall: SQLite commits (and frees the write lock) once the statement is done.
        return bool(INSERT_CLICK.execute(values).fetchall()[0][0])
    INSERT_CLICK_NO_RETURNING.execute(values)
    return Click.select(Click.is_unique).where(Click.click_id == values["click_id"]).scalar()


def insert_click(click, returning=None, window=UNIQUE_WINDOW):
    """Save the new ``click`` with one INSERT of every column, and set its ``is_unique``:
    true when this IP + user agent made no click on this flow in the ``window`` before it
    (the flow's unique window, 24 hours unless it sets another).

    ``returning``: whether the engine has INSERT … RETURNING (default: ask it).
    """
    click.is_unique = insert_values(click_values(click, window), returning)


def record_click(
    flow,
    visitor,
    now=None,
    geoip=None,
    parse_user_agent=None,
    bots=None,
    public_url="",
    spool=None,
    bypass=None,
):
    """Record a click of ``visitor`` on ``flow``, routed by its routes, and return
    ``(click, redirect_url)``; ``redirect_url`` is None when the route says ``not_found``.
    ``public_url`` is the tracker's base URL, for ``{click_url}`` in a lander's URL.

    When the flow has enabled click postbacks, their deliveries are saved in the same
    transaction as the click (they see its ``is_unique``); otherwise the click is one INSERT.
    With a ``spool`` (``spool.ClickSpool``), a click the database cannot take is spooled
    instead, its deliveries to be written with it (``click.spooled`` then says so); a click
    the spool cannot take either raises ``spool.SpoolError``. With the spool's write-behind
    (``TRACKER_CLICK_BATCH_MS``), a click of a flow without click postbacks goes to the spool
    file as a matter of course, written with the others of that time. ``bypass``: whether the click
    skips the database for the spool, as the caller decided it (it set the click timeouts only
    when not); None asks the spool now. Asked twice, the bypass could end in between, and the
    click would wait on a locked database without its timeouts, past gunicorn's.
    """
    now = now or utcnow()
    click = capture(flow, visitor, new_click_id(), now, geoip, parse_user_agent, bots)
    decision = route_click(flow, click, recall_visit)
    if spool is not None and writes_behind(spool, flow):
        spool.append(click_values(click, unique_window(flow)), batched=True)
        return click, destination_url(flow, click, decision, public_url)
    if spool is not None and (spool.bypassing() if bypass is None else bypass):
        spool.append(click_values(click, unique_window(flow)))
        click.spooled = True
        return click, destination_url(flow, click, decision, public_url)
    try:
        write_click(click, flow)
    except Exception as exc:
        if spool is None:
            raise
        spool.trip()
        spool.append(click_values(click, unique_window(flow)))
        click.spooled = True
        logger.warning(
            "click %s on flow %s spooled: the database could not take it (%s)",
            click.click_id,
            flow.id,
            str(exc).strip()[:300],
        )
    return click, destination_url(flow, click, decision, public_url)


def writes_behind(spool, flow):
    """True when ``flow``'s clicks go to the write-behind (``TRACKER_CLICK_BATCH_MS``): a click
    with click postbacks is written at once, with its deliveries."""
    return bool(spool.batch_ms) and not getattr(flow, "click_postbacks", None)


def write_click(click, flow):
    """The click's write: one INSERT in autocommit (never a read-then-write lock), or, with
    click postbacks, the INSERT and their deliveries in one short transaction."""
    window = unique_window(flow)
    if getattr(flow, "click_postbacks", None):
        with db.atomic():
            insert_click(click, window=window)
            outbox.enqueue_for_click(click, flow, now=click.created_at)
    else:
        insert_click(click, window=window)


def ids_since(moment):
    """A bound below the ids of clicks made after ``moment`` (ids begin with their time, in
    base-36 ms; a minute early, for the clock read twice): a query of a time window that says
    it on PostgreSQL reads only the months of the window, not every month's partition."""
    ms = int(moment.replace(tzinfo=datetime.timezone.utc).timestamp() * 1000) - 60_000
    return base36(ms, 9)


def ids_until(click_id):
    """A bound above the ids of clicks made before the click ``click_id`` (its time a minute
    late, for the clocks of several machines, as ``ids_since``): a new visitor's click then looks
    for its earlier clicks in the months of its window only, not in the months made ahead and the
    default partition too (20 µs of the server's CPU a click INSERT, 0.31 → 0.29 ms, four
    alternated runs of 5,800)."""
    return base36(int(click_id[:9], 36) + 60_000, 9)


def click_day():
    """A click's day, as PostgreSQL's visitor index has it (a literal unit: the index's own)."""
    return fn.date_trunc(SQL("'day'"), Click.created_at)


def days_of(since, until):
    """The days (midnights) from ``since``'s to ``until``'s."""
    day = since.replace(hour=0, minute=0, second=0, microsecond=0)
    days = []
    while day <= until:
        days.append(day)
        day += datetime.timedelta(days=1)
    return days


def unique_window(flow):
    """How long a visitor's clicks on ``flow`` count as one (is_unique, binding, the cookie)."""
    return datetime.timedelta(hours=flow.unique_window_hours or 24)


def recall_visit(click, window):
    """``(lander_id, offer_id)`` of the visitor's latest click on the flow within ``window``
    before ``click``, or None: one read on the (flow, visitor, created_at) index, made only
    for flows that bind visitors or route on ``is_unique``."""
    query = Click.select(Click.lander_id, Click.offer_id).where(
        Click.flow == click.flow_id,
        Click.visitor == click.visitor,
        Click.created_at > click.created_at - window,
    )
    if is_postgres():
        since = click.created_at - window
        query = query.where(
            Click.click_id >= ids_since(since),
            click_day().in_(days_of(since, click.created_at)),
            Click.ip == click.ip,  # see SAME_IP
        )
    return query.order_by(Click.created_at.desc()).limit(1).tuples().first()


def find_lander_click(click_id):
    """The click ``click_id`` names, with its flow's key (``click.flow.key``), or None."""
    if not click_id or len(click_id) > 32 or not click_id.isalnum() or not click_id.isascii():
        return None
    return Click.select(Click, Flow.key).join(Flow).where(Click.click_id == click_id.lower()).first()


def record_lander_click(click, now=None):
    """The visitor went on from the lander: note when, the first time only (``lp_clicked_at``,
    so a lander click counts once), and the click's offer (``/click/<n>`` may change it)."""
    now = now or utcnow()
    with db.atomic():
        Click.update(lp_clicked_at=fn.COALESCE(Click.lp_clicked_at, now), offer_id=click.offer_id).where(
            Click.click_id == click.click_id
        ).execute()
        # the click's conversions keep a copy of its offer for reports (models.CLICK_COPIED)
        Conversion.update(click_offer_id=click.offer_id).where(Conversion.click == click.click_id).execute()
        # a click of an hour already rolled up: its hour is read raw until rolled up again
        rollups.mark([(click.created_at, click.flow_id)], now)


def record_orphan(key, visitor, reason, now=None):
    """Keep a hit that matched no active flow, so nothing is dropped silently."""
    key, _ = clean_text(key, 255)
    OrphanVisit.create(
        created_at=now or utcnow(),
        key=key,
        reason=reason,
        ip=visitor.ip,
        user_agent=visitor.user_agent,
        referrer=visitor.referrer,
        params=visitor.params,
    )
