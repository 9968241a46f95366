"""Outgoing postback templates: ``URL``, ``URL|POST|form`` or ``URL|JSON|json``, and header
templates, rendered into the exact request a delivery sends.

Each token's value is encoded for where it stands: percent-encoded in the URL and in a form
body; JSON-escaped inside a JSON string; inside a JSON body but outside quotes, a number
stays a bare number and anything else becomes a JSON string; in a header, as it is (without
line breaks). ``raw`` inserts a value as it is.

A body bound for an ad platform (Meta, Snapchat, TikTok) then has its user data normalized and
hashed by that platform's rules (``platforms.protect_body``), whatever the template says.
"""

import json
import re
from dataclasses import dataclass
from decimal import Decimal
from urllib.parse import quote, urlsplit

import requests

from ..delivery.destinations import host_allowed, host_kind
from ..models import utcnow
from ..tokens import (
    TOKEN_RE,
    TokenContext,
    apply_filters,
    is_builtin,
    iter_tokens,
    offer_url,
    parse_filters,
    phone_region,
    resolve,
    to_text,
)
from . import leads, platforms
from .samples import sample_click, sample_conversion, sample_flow

SEPARATORS = {"|POST|": "form", "|JSON|": "json"}
FORM_TYPE = "application/x-www-form-urlencoded"
JSON_TYPE = "application/json"
JSON_NUMBER = re.compile(r"-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?")
# A URL that requests' normalization returns unchanged (tests compare the two): lowercase ASCII
# host, a port without leading zeros, a path from "/", no dot segment, a non-empty query if any,
# no fragment, only characters neither urllib3 nor requote_uri rewrite, and %-escapes in upper
# case of characters that are not unreserved (requote_uri would decode those).
PLAIN_URL = re.compile(
    r"https?://[a-z0-9-]+(?:\.[a-z0-9-]+)*(?::[1-9][0-9]{0,4})?"
    r"/[A-Za-z0-9\-._~!$&'()*+,;=:@/%]*(?:\?[A-Za-z0-9\-._~!$&'()*+,;=:@/?%]+)?"
)
ESCAPE = re.compile(r"%([0-9A-F]{2})")
UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]{1,100}")
TEST_EVENT_CODE = "test_event_code"


class TemplateError(ValueError):
    """A template that cannot become a request; ``request`` is what was rendered so far."""

    def __init__(self, message, request=None):
        super().__init__(message)
        self.message = message
        self.request = request


@dataclass(frozen=True)
class Template:
    url: str
    kind: str  # get | form | json
    body: str


@dataclass(frozen=True)
class Request:
    """The exact request a delivery sends, and resends on every retry."""

    method: str
    url: str
    headers: dict
    body: str

    def to_dict(self):
        """``{method, url, headers, body}``, as the preview and the API show it."""
        return {"method": self.method, "url": self.url, "headers": dict(self.headers), "body": self.body}


def parse(template):
    """Split a template on the first ``|POST|`` or ``|JSON|`` that stands outside a token."""
    text = template.strip()
    spans = [match.span() for match in TOKEN_RE.finditer(text)]
    start = 0
    while True:
        found = [(text.find(sep, start), sep) for sep in SEPARATORS if text.find(sep, start) >= 0]
        if not found:
            return Template(text, "get", "")
        index, sep = min(found)
        if not any(s < index + len(sep) and index < e for s, e in spans):
            return Template(text[:index].strip(), SEPARATORS[sep], text[index + len(sep) :].strip())
        start = index + 1


def _token_value(name, spec, ctx):
    """``(raw value, filtered text, filter names)`` of one token."""
    try:
        filters = parse_filters(spec)
    except ValueError as exc:
        raise TemplateError("{%s%s}: %s" % (name, spec, exc)) from None
    raw = resolve(name, ctx)
    text = apply_filters(to_text(raw), filters, phone_region(filters, ctx))
    if "required" in filters and not text.strip():
        raise TemplateError(
            "{%s%s} is empty for this click, and the postback requires it: not sent" % (name, spec)
        )
    # Storable anywhere: no lone surrogates, and no NUL for a raw value (PostgreSQL text).
    text = text.encode("utf-8", "replace").decode("utf-8")
    return raw, text, filters


def _fill_percent(template, ctx):
    """Fill tokens percent-encoded (the URL and a form body); ``raw`` values go in as they are."""

    def replace(match):
        name = match.group("a") or match.group("b")
        spec = match.group("fa") if match.group("a") else match.group("fb")
        _, text, filters = _token_value(name, spec or "", ctx)
        return text.replace("\x00", "") if "raw" in filters else quote(text, safe="")

    return TOKEN_RE.sub(replace, template)


def _fill_header(template, ctx):
    """Fill the tokens of a header value as they are: not percent-encoded, no line breaks."""

    def replace(match):
        name = match.group("a") or match.group("b")
        spec = match.group("fa") if match.group("a") else match.group("fb")
        return _token_value(name, spec or "", ctx)[1]

    return re.sub(r"[\r\n\x00]+", " ", TOKEN_RE.sub(replace, template)).strip()


def render_headers(headers, ctx):
    """A postback's ``{"Name": "template"}`` headers, their tokens filled."""
    rendered = {}
    for name, template in (headers or {}).items():
        if not HEADER_NAME.fullmatch(name):
            raise TemplateError("header name %r is not a valid HTTP header name" % name[:100])
        rendered[name] = _fill_header(template, ctx)
    return rendered


def _scan_json(literal, in_string, escaped):
    """Follow JSON string state through literal template text."""
    for char in literal:
        if escaped:
            escaped = False
        elif char == "\\" and in_string:
            escaped = True
        elif char == '"':
            in_string = not in_string
    return in_string, escaped


def _json_piece(raw, text, filters, in_string):
    if "raw" in filters:
        return text.replace("\x00", "")
    if in_string:
        return json.dumps(text, ensure_ascii=False)[1:-1]
    numeric = isinstance(raw, (int, float, Decimal)) and not isinstance(raw, bool)
    if numeric and JSON_NUMBER.fullmatch(text):
        return text
    return json.dumps(text, ensure_ascii=False)


def _fill_json(template, ctx):
    """Fill tokens of a JSON body, each encoded for where it stands."""
    out, pos, in_string, escaped = [], 0, False, False
    for match, name, spec in iter_tokens(template):
        literal = template[pos : match.start()]
        in_string, escaped = _scan_json(literal, in_string, escaped)
        out.append(literal)
        out.append(_json_piece(*_token_value(name, spec, ctx), in_string))
        escaped = False
        pos = match.end()
    out.append(template[pos:])
    return "".join(out)


def is_plain_url(url):
    """True when requests' normalization would return ``url`` as it is (``PLAIN_URL``)."""
    if not PLAIN_URL.fullmatch(url) or "/." in url.split("?", 1)[0]:
        return False
    escapes = url.count("%")
    if not escapes:
        return True
    found = ESCAPE.findall(url)
    return len(found) == escapes and not any(chr(int(pair, 16)) in UNRESERVED for pair in found)


def prepare_url(url):
    """The URL exactly as the sender puts it on the wire (requests' own normalization, which
    costs a tenth of a postback: skipped for a URL it would return unchanged)."""
    if is_plain_url(url):
        return url
    try:
        parts = urlsplit(url)  # "http://[::1/" is refused here: a bracket left open
    except ValueError as exc:
        raise TemplateError("the URL is not valid: %s" % exc) from None
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        raise TemplateError("the URL must start with http:// or https:// and name a host: %r" % url[:200])
    try:
        return requests.Request("GET", url).prepare().url
    except (requests.RequestException, ValueError) as exc:
        raise TemplateError("the URL is not valid: %s" % exc) from None


def render(template, ctx, headers=None, test_event_code=""):
    """Render ``template`` (with its ``headers``) in token context ``ctx`` into a ``Request``;
    ``test_event_code`` (a test delivery's) joins the payload. Raises TemplateError."""
    parsed = parse(template)
    if not parsed.url:
        raise TemplateError("the template has no URL")
    url = prepare_url(_fill_percent(parsed.url, ctx))
    if parsed.kind == "get":
        method, content, body = "GET", {}, ""
    elif parsed.kind == "form":
        method, content, body = "POST", {"Content-Type": FORM_TYPE}, _fill_percent(parsed.body, ctx)
    else:
        method, content, body = "POST", {"Content-Type": JSON_TYPE}, _fill_json(parsed.body, ctx)
        try:
            json.loads(body)
        except ValueError as exc:
            raise TemplateError(
                "the JSON body is not valid JSON: %s" % exc, Request(method, url, content, body)
            ) from None
    body = platforms.protect_body(url, parsed.kind, body, to_text(resolve("country", ctx)))
    request = Request(method, url, {**content, **render_headers(headers, ctx)}, body)
    return with_test_event_code(request, parsed.kind, test_event_code)


def with_test_event_code(request, kind, code):
    """``request`` with ``test_event_code`` beside the payload's events (Meta and TikTok read it
    at the top of the body), so a test shows in the platform's test-events tool, not as live
    data. A template that sets the field itself is left as it is."""
    if not code:
        return request
    if kind == "json":
        if not request.body.lstrip().startswith("{") or TEST_EVENT_CODE in json.loads(request.body):
            return request
        head, rest = request.body.split("{", 1)
        pair = "%s:%s" % (json.dumps(TEST_EVENT_CODE), json.dumps(code, ensure_ascii=False))
        body = head + "{" + pair + ("," if rest.strip() != "}" else "") + rest
        return Request(request.method, request.url, request.headers, body)
    pair = "%s=%s" % (TEST_EVENT_CODE, quote(code, safe=""))
    if kind == "form":
        body = request.body + ("&" if request.body else "") + pair
        return Request(request.method, request.url, request.headers, body)
    url = request.url + ("&" if urlsplit(request.url).query else "?") + pair
    return Request(request.method, url, request.headers, request.body)


def context(click=None, flow=None, conversion=None, now=None, lead=None):
    """The token context of a delivery: the click, its flow and source, the conversion, the time,
    and the lead data (``lead``: the click's lead profile; None: the conversion's own data)."""
    flow = flow if flow is not None else (click.flow if click is not None else None)
    source = getattr(flow, "source", None) if flow is not None else None
    if source is None and flow is not None and flow.traffic_source_id:
        source = flow.traffic_source
    landing = offer_url(flow, click) if flow is not None and click is not None else ""
    return TokenContext(
        click=click,
        flow=flow,
        conversion=conversion,
        traffic_source=source,
        now=now or utcnow(),
        landing_url=landing,
        lead=lead,
    )


def stored_lead(click, conversion=None):
    """The lead data of a saved click: its stored lead profile, with the conversion's own data
    filling what the profile lacks (a sample conversion's, in a preview)."""
    return leads.merge(conversion.data if conversion is not None else {}, leads.profile_of(click.click_id))


def preview(
    template, click=None, conversion=None, flow=None, now=None, headers=None, test_event_code="", lead=None
):
    """The request ``template`` (with its ``headers``) would send, as a dict
    ``{method, url, headers, body}``.

    Sample values stand in for a missing click or conversion; ``lead`` None reads the
    conversion's own data (``stored_lead`` gives a saved click's profile). Raises TemplateError.
    """
    if click is None:
        flow = flow or sample_flow()
        click = sample_click(flow)
    conversion = conversion if conversion is not None else sample_conversion(click, flow)
    ctx = context(click, flow, conversion, now or utcnow(), lead)
    return render(template, ctx, headers, test_event_code).to_dict()


AUTHORITY_RE = re.compile(r"\s*[A-Za-z][A-Za-z0-9+.\-]*://(?P<authority>[^/?#]*)")


def host_problem(url):
    """Why the host of a URL template is refused, or None: a token there (``http://{sub2}:8080/``)
    would let whoever fills it (a visitor's click) choose where the postback goes (DESIGN §4.8)."""
    match = AUTHORITY_RE.match(url)
    if match is None:
        token = TOKEN_RE.match(url.strip())
        return (
            "the URL must start with http:// or https:// and a host, not with the token %s: "
            "a token may not choose where the postback goes" % token.group(0)
            if token
            else None
        )
    host = match.group("authority").rpartition("@")[2]
    tokens = [m.group(0) for m in TOKEN_RE.finditer(host)]
    if tokens:
        return (
            "the host of the URL holds the token %s: a token may not choose where the postback "
            "goes (write the host and port out; tokens belong in the path, query or body)" % tokens[0]
        )
    return None


def address_warning(url, allowed=()):
    """A warning when the URL's host is an address (or ``localhost``) outgoing postbacks may
    not reach, and ``allowed`` (``TRACKER_DELIVERY_ALLOWED_NETWORKS``) does not allow it;
    names are checked when sent."""
    match = AUTHORITY_RE.match(url)
    if match is None:
        return None
    host = match.group("authority").rpartition("@")[2]
    host = host.rpartition("]")[0] + "]" if host.startswith("[") else host.partition(":")[0]
    kind = host_kind(host)
    if kind is None or host_allowed(host, allowed):
        return None
    return (
        "%s is a %s address: the worker refuses to send there unless "
        "TRACKER_DELIVERY_ALLOWED_NETWORKS allows it" % (host, kind)
    )


def check(template, headers=None, allowed=None):
    """``(errors, warnings)`` for a template (and its headers) as the editor and the API
    validate it on save.

    Errors: no URL, a bad URL, a token in the URL's host, an unknown filter, a JSON body that
    does not parse with sample values, a bad header name. Warnings: names that are no built-in
    token (read from the click's parameters); with ``allowed`` (the parsed
    ``TRACKER_DELIVERY_ALLOWED_NETWORKS``), a host that is a private or loopback address it
    does not allow.
    """
    if not isinstance(template, str) or not template.strip():
        return ["the template is empty"], []
    url = parse(template).url
    problem = host_problem(url)
    if problem:
        return [problem], []
    warnings, seen = [], set()
    if allowed is not None and address_warning(url, allowed):
        warnings.append(address_warning(url, allowed))
    for _, name, _ in iter_tokens(template + "".join((headers or {}).values())):
        if not is_builtin(name) and name.lower() not in seen:
            seen.add(name.lower())
            warnings.append(
                "{%s} is not a built-in token: it is read from the click's query "
                "parameter or the lead data named %r (empty when absent)" % (name, name)
            )
    try:
        preview(template, headers=headers)
    except TemplateError as exc:
        return [exc.message], warnings
    return [], warnings
