"""The postback editor's rules, apart from its routes: which data a preview uses, the
preview with its error and warnings, the send-test delivery, and the preset picker's
choices. The editor page and its JSON routes both call these, so a template previews the
same whether the page was rendered or refreshed as the user typed."""

import logging

from flask import current_app

from ..delivery.destinations import allowed_networks
from ..errors import ValidationError
from ..flows import clean_request_options
from ..models import Click, Conversion, utcnow
from ..postbacks import presets
from ..postbacks import templates as postback_templates
from ..postbacks.outbox import enqueue_test
from ..postbacks.samples import sample_conversion
from ..tokens import FAMILIES, FILTERS, REGISTRY, TOKENS, iter_tokens

logger = logging.getLogger(__name__)

MAX_TEMPLATE = 20000  # the API's limit: a preview of anything longer is refused, not rendered
FILTER_DOCS = {
    "sha256": "trim, lowercase, then hex SHA-256 (empty stays empty)",
    "digits": "a phone as digits with its country code (the click's when missing): Meta, Snapchat",
    "e164": "a phone in E.164, + and digits (completed the same way): TikTok",
    "required": "the delivery fails, instead of being sent, when the value is empty",
    "lower": "lowercase",
    "upper": "uppercase",
    "trim": "strip surrounding spaces",
    "raw": "insert as it is, without encoding (a value that is already encoded)",
}
# Preset ids start with the name of who receives them; the picker groups them by it.
PRESET_GROUPS = (
    ("facebook", "Facebook"),
    ("snapchat", "Snapchat"),
    ("tiktok", "TikTok"),
    ("lendingtree", "LendingTree"),
    ("momentscience", "MomentScience"),
    ("traffic_source", "ClickFlare"),
    ("generic", "Generic"),
)
CONVERSION_ONLY_FAMILIES = ("req.sessiondata.", "req.session.")


def token_rows():
    """The token reference: every token with its aliases and the triggers that provide it,
    then the families of names, then the filters."""
    tokens = [{"name": t.name, "aliases": t.aliases, "doc": t.doc, "triggers": t.triggers} for t in TOKENS]
    families = [
        {"name": prefix + "NAME", "doc": doc, "conversion_only": prefix in CONVERSION_ONLY_FAMILIES}
        for prefix, doc in FAMILIES.items()
    ]
    filters = [{"name": name, "doc": FILTER_DOCS.get(name, "")} for name in FILTERS]
    return {"tokens": tokens, "families": families, "filters": filters}


def preset_choices():
    """``(groups, fields)`` for the picker: ``groups`` is ``[(label, [preset…])]``; ``fields``
    lists each distinct input once with the ids of the presets that ask for it."""
    listed = presets.list_presets()
    groups = [(label, [p for p in listed if p["id"].startswith(prefix)]) for prefix, label in PRESET_GROUPS]
    fields = {}
    for preset in listed:
        for field in preset["fields"]:
            entry = fields.setdefault(field["name"], dict(field, presets=[]))
            entry["presets"].append(preset["id"])
    for entry in fields.values():
        entry["used_by"] = sorted(
            {label for prefix, label in PRESET_GROUPS if any(p.startswith(prefix) for p in entry["presets"])}
        )
    return [(label, items) for label, items in groups if items], list(fields.values())


def build_preset(preset_id, fields):
    """``{trigger, url}`` of a preset filled with ``fields``; raises ``ValidationError``."""
    if not isinstance(preset_id, str) or not preset_id:
        raise ValidationError("choose a preset", 400)
    if not isinstance(fields, dict):
        raise ValidationError("fields must be an object", 400)
    return presets.build(preset_id, **{k: v for k, v in fields.items() if k != "preset_id"})


def preview_subject(flow):
    """``(click, conversion, description)`` a preview of ``flow`` fills its tokens from: the
    flow's latest conversion and its click; else its latest click (with sample conversion
    values); else ``(None, None, …)`` for sample values throughout."""
    conversion = (
        Conversion.select()
        .where(Conversion.flow == flow.id)
        .order_by(Conversion.created_at.desc(), Conversion.id.desc())
        .first()
    )
    if conversion is not None:
        return (
            conversion.click,
            conversion,
            (
                "this flow's latest conversion (%d, %s) and its click %s"
                % (conversion.id, conversion.event, conversion.click_id)
            ),
        )
    click = Click.select().where(Click.flow == flow.id).order_by(Click.created_at.desc()).first()
    if click is not None:
        return click, None, "this flow's latest click %s, with sample conversion values" % click.click_id
    return None, None, "sample values (this flow has no clicks yet)"


def _trigger_warnings(template, trigger):
    """Tokens the chosen trigger cannot fill: a click postback knows no conversion."""
    if trigger != "click":
        return []
    names = []
    for _, name, _ in iter_tokens(template):
        token, lowered = REGISTRY.get(name.lower()), name.lower()
        conversion_only = (token is not None and "click" not in token.triggers) or lowered.startswith(
            CONVERSION_ONLY_FAMILIES
        )
        if conversion_only and name not in names:
            names.append(name)
    return [
        "{%s} is empty on the click trigger: only conversion, status and payout postbacks know it" % name
        for name in names
    ]


def template_problem(template):
    """Why ``template`` can't be rendered at all (not text, empty, too long), or None."""
    if not isinstance(template, str):
        return "the template (url) must be a string"
    if not template.strip():
        return "the template is empty"
    if len(template) > MAX_TEMPLATE or "\x00" in template:
        return "the template is longer than %d characters or holds a NUL character" % MAX_TEMPLATE
    return None


def preview(flow, template, trigger, headers=None):
    """The request ``template`` (with ``headers``) would send for ``flow`` as the editor shows it:
    ``{request, error, warnings, subject}``. ``request`` is ``{method, url, headers, body}``
    (with an error: what was rendered before it, if anything), or None for an empty template.
    Secrets stay visible: the user typed them."""
    if isinstance(template, str) and not template.strip():
        return {"request": None, "error": None, "warnings": [], "subject": ""}
    problem = template_problem(template)
    if problem:
        return {"request": None, "error": problem, "warnings": [], "subject": ""}
    click, conversion, subject = preview_subject(flow)
    _, warnings = postback_templates.check(template, headers, allowed_networks(current_app.config))
    warnings += _trigger_warnings(template, trigger)
    lead = None
    if click is not None:
        lead = postback_templates.stored_lead(click, conversion or sample_conversion(click, flow))
    try:
        request = postback_templates.preview(
            template, click=click, conversion=conversion, flow=flow, now=utcnow(), headers=headers, lead=lead
        )
        error = None
    except postback_templates.TemplateError as exc:
        request = exc.request.to_dict() if exc.request is not None else None
        error = exc.message
    return {"request": request, "error": error, "warnings": warnings, "subject": subject}


def send_test(flow, template, options=None):
    """Queue a real delivery of ``template``, marked test, with the preview's data and the
    postback's ``options`` (headers, success_body, retry_4xx, and the test_event_code the test
    adds); returns the Delivery. Raises ``postback_templates.TemplateError``."""
    problem = template_problem(template)
    if problem:
        raise postback_templates.TemplateError(problem)
    try:
        options = clean_request_options(options or {})
    except ValidationError as exc:
        raise postback_templates.TemplateError(exc.message) from None
    click, conversion, _ = preview_subject(flow)
    delivery = enqueue_test(template, flow=flow, click=click, conversion=conversion, options=options)
    logger.info("test delivery %d queued for flow %d (%s)", delivery.id, flow.id, delivery.method)
    return delivery
