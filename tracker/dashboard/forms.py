"""HTML form fields → the same dicts the API sends to ``flows.clean_*``.

One set of rules validates a flow, a source or a postback, whichever door it came in by;
these functions only reshape a submitted form (a MultiDict) and never judge it.
"""

from ..models import VAR_NAMES


def _whole_number(value):
    """``"30"`` → 30, ``""`` → None; anything else passes through for the cleaner to refuse."""
    value = (value or "").strip()
    if not value:
        return None
    return int(value) if value.isdigit() else value


def _names(value):
    """``"lead, sale"`` → ``["lead", "sale"]``."""
    return [name.strip() for name in (value or "").split(",") if name.strip()]


def _checked(form, name):
    return form.get(name) in ("1", "on", "true", "yes")


def flow_fields(form):
    """The flow form as a ``clean_flow`` body."""
    return {
        "name": form.get("name", ""),
        "offer_url": form.get("offer_url", ""),
        "payout": form.get("payout", "").strip() or "0",
        "currency": form.get("currency", ""),
        "attribution_days": _whole_number(form.get("attribution_days")),
        "fallback_url": form.get("fallback_url", ""),
        "traffic_source_id": _whole_number(form.get("traffic_source_id")),
    }


def event_list(form):
    """The events table (rows ``events-N-name``, ``-conversion``, ``-allow_duplicates``) as
    a ``clean_flow`` ``events`` list; rows left without a name are dropped."""
    events, index = [], 0
    while "events-%d-name" % index in form:
        prefix = "events-%d-" % index
        if form.get(prefix + "name", "").strip():
            events.append(
                {
                    "name": form[prefix + "name"],
                    "conversion": _checked(form, prefix + "conversion"),
                    "allow_duplicates": _checked(form, prefix + "allow_duplicates"),
                }
            )
        index += 1
    return events


def postback_fields(form):
    """The postback form as a ``clean_postback`` body."""
    return {
        "trigger": form.get("trigger", ""),
        "name": form.get("name", ""),
        "url": form.get("url", ""),
        "events": _names(form.get("events")),
        "statuses": form.getlist("statuses"),
        "payout_type": form.get("payout_type", "all"),
        "enabled": _checked(form, "enabled"),
        **request_options(form),
    }


def request_options(form):
    """The editor's request options (headers, success_body, retry_4xx, test_event_code) as the
    ``clean_request_options`` body; ``form`` is the submitted form or the script's JSON."""
    retry = form.get("retry_4xx")
    return {
        "headers": parse_headers(form.get("headers")),
        "success_body": form.get("success_body", "") or "",
        "retry_4xx": retry if isinstance(retry, bool) else _checked(form, "retry_4xx"),
        "test_event_code": form.get("test_event_code", "") or "",
    }


def parse_headers(text):
    """``"Access-Token: abc"`` lines → ``{"Access-Token": "abc"}`` (a dict passes through; a
    line without a colon becomes a name for the cleaner to refuse)."""
    if isinstance(text, dict):
        return text
    headers = {}
    for line in (text or "").splitlines() if isinstance(text, str) else []:
        if line.strip():
            name, _, value = line.partition(":")
            headers[name.strip()] = value.strip()
    return headers


def headers_text(headers):
    """A postback's headers as the editor's lines."""
    return "\n".join("%s: %s" % item for item in (headers or {}).items())


def source_fields(form):
    """The traffic source form as a ``clean_source`` body."""
    return {
        "name": form.get("name", ""),
        "click_id_param": form.get("click_id_param", ""),
        "vars": {name: form[name].strip() for name in VAR_NAMES if form.get(name, "").strip()},
        "postback_url": form.get("postback_url", ""),
        "postback_events": _names(form.get("postback_events")),
        "active": _checked(form, "active"),
    }


def preset_choice(form):
    """The editor's preset picker: ``(preset id, {input name: value})`` from the ``preset``
    select and its ``preset-<name>`` inputs."""
    fields = {
        name[len("preset-") :]: value
        for name, value in form.items()
        if name.startswith("preset-") and value.strip()
    }
    return form.get("preset", ""), fields
