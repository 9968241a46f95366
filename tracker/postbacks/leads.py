"""The click's lead profile (DESIGN §4.2): the lead data of every conversion and event of a
click, merged, so that a ``sale`` or a payout event reaches the platforms with the email and
phone the ``lead`` event brought. Later values win; an empty value never overwrites one.

``merge_into_profile`` runs in the caller's transaction, the one that records the conversion,
and holds the profile's row while it merges: on SQLite the write transaction already holds the
database's write lock (``BEGIN IMMEDIATE``); on PostgreSQL the upsert locks the row. So
two conversions of one click recorded at the same instant both land in the profile.
"""

import logging

from ..db import Prepared
from ..models import LeadProfile

logger = logging.getLogger(__name__)

MAX_KEYS = 200  # as many names as a click keeps of its query


def is_empty(value):
    """True for a value that says nothing: None, blank text, an empty list or object."""
    if value is None:
        return True
    if isinstance(value, str):
        return not value.strip()
    return isinstance(value, (dict, list)) and not value


def merge(base, new):
    """``base`` with ``new`` merged over it: later values win, empty ones are skipped, nested
    objects merge key by key. Neither argument is changed."""
    merged = dict(base or {})
    for name, value in (new or {}).items():
        if is_empty(value):
            continue
        if isinstance(value, dict) and isinstance(merged.get(name), dict):
            value = merge(merged[name], value)
        elif isinstance(value, dict):
            value = merge({}, value)
            if not value:
                continue
        if name not in merged and len(merged) >= MAX_KEYS:
            continue
        merged[name] = value
    return merged


def profile_of(click_id):
    """The stored lead profile of a click ({} when it has none, or for an unsaved click)."""
    if not click_id:
        return {}
    row = LeadProfile.select(LeadProfile.data).where(LeadProfile.click == click_id).first()
    return row.data if row is not None else {}


# Their SQL made once per engine (db.Prepared): a conversion's path runs them each time.
# The upsert writes a new profile, or takes the row (PostgreSQL locks it, as FOR UPDATE would)
# and gives its data back, in one round trip: a click's first conversion costs one statement.
UPSERT_PROFILE = Prepared(
    lambda slot: (
        LeadProfile.insert(click=slot("click"), data=slot("data"), updated_at=slot("at"))
        .on_conflict(conflict_target=(LeadProfile.click,), update={LeadProfile.updated_at: slot("at")})
        .returning(LeadProfile.data)
    )
)
UPDATE_PROFILE = Prepared(
    lambda slot: LeadProfile.update(data=slot("data"), updated_at=slot("at")).where(
        LeadProfile.click == slot("click")
    )
)


def merge_into_profile(click_id, data, now):
    """Merge ``data`` into the click's profile, inside the caller's transaction; return the
    profile as it now stands.

    The upsert stores ``data`` as a new profile or gives back the stored one; merging ``data``
    into what it gives back changes nothing when it was just stored (``merge`` is idempotent),
    so only a stored profile that ``data`` changes is written again."""
    merged = merge({}, data)
    values = {
        "click": click_id,
        "at": LeadProfile.updated_at.db_value(now),
        "data": LeadProfile.data.db_value(merged),
    }
    current = LeadProfile.data.python_value(UPSERT_PROFILE.execute(values).fetchall()[0][0])
    merged = merge(current, data)
    if merged != current:
        values["data"] = LeadProfile.data.db_value(merged)
        UPDATE_PROFILE.execute(values)
    return merged
