"""Active flows by key, kept a few seconds per process, so a click costs no lookup; their
routes compiled (``routing.load_router``) when loaded; and the bot lists, kept alike.

Saving a flow, a traffic source, a postback, an offer, a lander or the bot lists calls
``forget_flows()``, which empties every cache of this process at once; other processes see
the change within the TTL.
"""

import logging
import threading
import time

from ..enrichment.bots import NO_LISTS, load_bot_lists
from ..models import Flow
from .routing import load_router

logger = logging.getLogger(__name__)

_generation = [0]


def forget_flows():
    """Make every FlowCache of this process read its flows again (a flow was saved)."""
    _generation[0] += 1


def generation():
    """A number that ``forget_flows`` changes: a cache of flows keeps what it read under it."""
    return _generation[0]


class FlowCache:
    """Active flows by key, each kept ``ttl`` seconds."""

    def __init__(self, ttl=2.0, timezone="UTC"):
        self.ttl = ttl
        self.timezone = timezone  # of routes' hour and weekday rules, unless the flow sets one
        self._items = {}
        self._bots = (0.0, None)
        self._lock = threading.Lock()
        self._generation = _generation[0]

    def get(self, key):
        """The flow (with its traffic source and postbacks loaded) for ``key``, or None."""
        if len(key) > 32 or "\x00" in key:
            return None  # no flow has such a key; don't let it reach the database
        if self._generation != _generation[0]:
            self.clear()
        now = time.monotonic()
        hit = self._items.get(key)
        if hit is not None and hit[0] > now:
            return hit[1]
        try:
            flow = load_flow(key, self.timezone)
        except Exception:
            if hit is None:
                raise
            # The database is away: the flow as last read keeps clicks flowing (to the spool).
            logger.warning("flow %r kept from the cache: the database could not be read", key)
            self._items[key] = (now + self.ttl, hit[1])  # ask the database again in ttl seconds
            return hit[1]
        with self._lock:
            if len(self._items) > 10000:
                self._items.clear()
            self._items[key] = (now + self.ttl, flow)
        return flow

    def bot_lists(self):
        """The user's bot lists, compiled (``enrichment.bots.BotLists``)."""
        if self._generation != _generation[0]:
            self.clear()
        now = time.monotonic()
        expires, lists = self._bots
        if lists is None or expires <= now:
            try:
                fresh = load_bot_lists()
            except Exception:
                logger.warning("bot lists kept from the cache: the database could not be read")
                lists = lists if lists is not None else NO_LISTS
                self._bots = (now + self.ttl, lists)  # ask the database again in ttl seconds
                return lists
            lists = fresh
            self._bots = (now + self.ttl, lists)
        return lists

    def clear(self):
        """Forget every cached flow and the bot lists."""
        with self._lock:
            self._items.clear()
            self._bots = (0.0, None)
            self._generation = _generation[0]


def load_flow(key, timezone="UTC"):
    """Read a flow by key, with what the click path needs already attached: its source, its
    click postbacks and its compiled routes (``flow.router``, None without routes)."""
    flow = Flow.live().where(Flow.key == key).first()
    if flow is None:
        return None
    flow.source = flow.traffic_source if flow.traffic_source_id else None
    flow.click_postbacks = [p for p in flow.postbacks if p.trigger == "click" and p.enabled]
    flow.router = load_router(flow, timezone)
    return flow
