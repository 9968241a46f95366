"""The two refusals every door (API, dashboard, CLI) answers alike: a request the rules
refuse, and a thing that is not there."""


class ValidationError(Exception):
    """Bad input; ``status`` is the HTTP code to answer with (422: well-formed, but refused)."""

    def __init__(self, message, status=422):
        super().__init__(message)
        self.message = message
        self.status = status


class NotFound(Exception):
    """``what`` (``"flow 3"``) does not exist; answered 404 with ``"flow 3 not found"``."""

    status = 404

    def __init__(self, what):
        self.message = "%s not found" % what
        super().__init__(self.message)


def found(model, *conditions, what):
    """The one row of ``model`` matching ``conditions``; ``NotFound(what)`` when there is none."""
    row = model.get_or_none(*conditions)
    if row is None:
        raise NotFound(what)
    return row
