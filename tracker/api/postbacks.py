"""``/api/v1/postbacks/…``: preview a template, send a test, and the editor's presets."""

from flask import current_app, jsonify

from ..delivery.destinations import allowed_networks
from ..errors import ValidationError, found
from ..flows import clean_request_options
from ..models import Click, Flow
from ..money import parse_money
from ..postbacks import leads, presets, samples, templates
from ..postbacks.outbox import enqueue_test
from ..web import json_body
from . import bp
from .shapes import delivery_to_dict, shown_headers

CONVERSION_FIELDS = {"event", "payout", "currency", "status", "txid", "data"}


def _template(body):
    url = body.get("url")
    if not isinstance(url, str) or not url.strip():
        raise ValidationError("url (the postback template) is required", 400)
    if len(url) > 20000 or "\x00" in url:
        raise ValidationError("url is too long or holds a NUL character", 400)
    return url


def _click(body):
    click_id = body.get("click_id")
    if click_id in (None, ""):
        return None
    if not isinstance(click_id, str) or "\x00" in click_id:
        raise ValidationError("click_id must be a string without NUL characters", 400)
    return found(Click, Click.click_id == click_id[:64], what="click %r" % click_id[:64])


def _flow(body):
    flow_id = body.get("flow_id")
    if flow_id is None:
        return None
    if isinstance(flow_id, bool) or not isinstance(flow_id, int) or not 0 < flow_id < 2**63:
        raise ValidationError("flow_id must be an id (from 1 to 2^63-1)", 400)
    return found(Flow, Flow.id == flow_id, Flow.deleted == False, what="flow %d" % flow_id)  # noqa: E712


def _conversion(body, click):
    """An unsaved conversion from the preview's ``conversion`` object, over sample values."""
    data = body.get("conversion")
    if data is None:
        return None
    if not isinstance(data, dict) or set(data) - CONVERSION_FIELDS:
        raise ValidationError(
            "conversion must be an object with %s" % ", ".join(sorted(CONVERSION_FIELDS)), 400
        )
    conversion = samples.sample_conversion(click)
    for name in ("event", "currency", "status", "txid"):
        if name in data:
            if not isinstance(data[name], str):
                raise ValidationError("conversion.%s must be a string" % name, 400)
            setattr(conversion, name, data[name])
    if "payout" in data:
        conversion.payout = parse_money(data["payout"], "conversion.payout")
    if "data" in data:
        if not isinstance(data["data"], dict):
            raise ValidationError("conversion.data must be an object", 400)
        conversion.data = data["data"]
    return conversion


def _options(body):
    try:
        return clean_request_options(body)
    except ValidationError as exc:
        raise ValidationError(exc.message, 400) from None


def _lead(body, click, conversion):
    """The lead data a preview renders: a real click's lead profile, with the preview's own
    ``conversion.data`` over it (or sample values under it); None for a sample click."""
    if click is None:
        return None
    if "data" in (body.get("conversion") or {}):
        return leads.merge(leads.profile_of(click.click_id), conversion.data)
    return templates.stored_lead(click, conversion or samples.sample_conversion(click))


@bp.post("/postbacks/preview")
def preview_postback():
    """The exact request a template would send: ``{method, url, headers, body, warnings}``
    (secret-looking headers masked unless ``?reveal=1``). ``test_event_code`` shows what "send test" adds."""
    body = json_body()
    template, click, flow, options = _template(body), _click(body), _flow(body), _options(body)
    conversion = _conversion(body, click)
    _, warnings = templates.check(template, options["headers"], allowed_networks(current_app.config))
    try:
        request = templates.preview(
            template,
            click=click,
            conversion=conversion,
            flow=flow,
            headers=options["headers"],
            test_event_code=options["test_event_code"],
            lead=_lead(body, click, conversion),
        )
    except templates.TemplateError as exc:
        return jsonify(error=exc.message, warnings=warnings), 422
    # The URL and body echo the template the caller just sent, secrets and all; only the
    # headers are masked unless ?reveal=1, as before.
    return jsonify(dict(request, headers=shown_headers(request["headers"]), warnings=warnings))


@bp.post("/postbacks/test")
def test_postback():
    """Queue a real delivery of the template (with its ``headers``, ``success_body``,
    ``retry_4xx`` and ``test_event_code``), marked ``test``."""
    body = json_body()
    template, click, flow, options = _template(body), _click(body), _flow(body), _options(body)
    try:
        delivery = enqueue_test(template, flow=flow, click=click, options=options)
    except templates.TemplateError as exc:
        return jsonify(error=exc.message), 422
    return jsonify(delivery_to_dict(delivery)), 201


@bp.get("/postbacks/presets")
def list_presets():
    return jsonify(items=presets.list_presets(), next=None)


@bp.post("/postbacks/presets/<preset_id>")
def build_preset(preset_id):
    """The postback of a preset filled with the body's fields: ``{trigger, url, headers?,
    success_body?, retry_4xx?, test_event_code?, statuses?, payout_type?}``."""
    fields = {k: v for k, v in json_body().items() if k != "preset_id"}
    return jsonify(presets.build(preset_id, **fields))
