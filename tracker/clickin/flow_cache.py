"""Active flows by key, kept a few seconds per process, so a click costs no lookup.

Saving a flow, a traffic source or a postback calls ``forget_flows()``, which empties
every cache of this process at once; other processes see the change within the TTL.
"""

import threading
import time

from ..models import Flow

_generation = [0]


def forget_flows():
    """Make every FlowCache of this process read its flows again (a flow was saved)."""
    _generation[0] += 1


class FlowCache:
    """Active flows by key, each kept ``ttl`` seconds."""

    def __init__(self, ttl=2.0):
        self.ttl = ttl
        self._items = {}
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
        flow = load_flow(key)
        with self._lock:
            if len(self._items) > 10000:
                self._items.clear()
            self._items[key] = (now + self.ttl, flow)
        return flow

    def clear(self):
        """Forget every cached flow."""
        with self._lock:
            self._items.clear()
            self._generation = _generation[0]


def load_flow(key):
    """Read a flow by key, with what the click path needs already attached."""
    flow = Flow.live().where(Flow.key == key).first()
    if flow is None:
        return None
    flow.source = flow.traffic_source if flow.traffic_source_id else None
    flow.click_postbacks = [p for p in flow.postbacks if p.trigger == "click" and p.enabled]
    return flow
