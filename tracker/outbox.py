"""The outbox: which outgoing postbacks a click or a conversion enqueues.

Deliveries are saved by the caller's transaction, together with the click or conversion that
triggered them, so a crash can never lose one.
"""


def enqueue_for_click(click, flow, now=None):
    """Save and return the Delivery rows of ``flow``'s click postbacks for ``click``."""
    return []


def enqueue_for_conversion(conversion, previous=None, now=None):
    """Save and return the Delivery rows that ``conversion`` triggers.

    ``previous`` is None for a new conversion, else ``(status, payout)`` before this change.
    """
    return []
