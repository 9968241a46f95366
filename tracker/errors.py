"""The two refusals every door (API, dashboard, CLI) answers alike: a request the rules
refuse, and a thing that is not there."""

from contextlib import contextmanager


class ValidationError(Exception):
    """Bad input; ``status`` is the HTTP code to answer with (422: well-formed, but refused).
    ``fields`` maps each refused field (``name``, ``routes.0.rules.1``) to its reason, for
    forms that show every reason next to its field."""

    def __init__(self, message, status=422, fields=None):
        super().__init__(message)
        self.message = message
        self.status = status
        self.fields = fields or {}


class FieldErrors:
    """Collects the refusals of a form's fields, so that all of them are answered at once."""

    def __init__(self):
        self.fields = {}

    def add(self, name, message):
        """Refuse field ``name`` (its first reason wins)."""
        self.fields.setdefault(name, message)

    @contextmanager
    def field(self, name):
        """Check field ``name`` inside the block: a 422 ValidationError is kept (with the fields
        it names itself), anything else goes on."""
        try:
            yield
        except ValidationError as exc:
            if exc.status != 422:
                raise
            for inner, message in (exc.fields or {name: exc.message}).items():
                self.add(inner, message)

    def raise_any(self):
        """Raise one ValidationError with every reason, when there is any."""
        if self.fields:
            raise ValidationError("; ".join(self.fields.values()), fields=dict(self.fields))


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
