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
        "timezone": form.get("timezone", ""),
        "unique_window_hours": _whole_number(form.get("unique_window_hours")),
        "bind_visitors": _checked(form, "bind_visitors"),
    }


def target_fields(form, kind):
    """The offer or lander form as a ``clean_offer`` / ``clean_lander`` body."""
    fields = {"name": form.get("name", ""), "url": form.get("url", "")}
    if kind == "offer":
        fields["payout"] = form.get("payout", "").strip() or "0"
        fields["currency"] = form.get("currency", "")
    return fields


def _lines(value, commas=True):
    """One entry a line (and, with ``commas``, a comma), blanks dropped."""
    text = (value or "").replace("\r", "")
    if commas:
        text = text.replace(",", "\n")
    return [line.strip() for line in text.split("\n") if line.strip()]


def bot_fields(form):
    """The bot lists form as a ``clean_bot_rules`` body: addresses by line or comma, user
    agent substrings by line (a user agent may hold a comma)."""
    return {"ips": _lines(form.get("ips")), "user_agents": _lines(form.get("user_agents"), commas=False)}


def route_fields(form):
    """The route editor as a route of ``clean_routes``, and the form row of each rule kept
    (rows left empty are dropped), so a refused rule is shown next to its row."""
    rules, rule_rows, index = [], [], 0
    while "rules-%d-field" % index in form:
        prefix = "rules-%d-" % index
        field, op, values = (
            form.get(prefix + "field", ""),
            form.get(prefix + "op", ""),
            form.get(prefix + "values", ""),
        )
        if field.strip() or values.strip():
            rule = {"field": field, "op": op}
            if op not in ("empty", "not_empty"):
                rule["values"] = _lines(values)
            rules.append(rule)
            rule_rows.append(index)
        index += 1
    return {
        "name": form.get("name", ""),
        "enabled": _checked(form, "enabled"),
        "default": _checked(form, "default"),
        "action": form.get("action", "redirect"),
        "rules": rules,
        "landers": _weights(form, "landers", "lander_id"),
        "offers": _weights(form, "offers", "offer_id"),
    }, rule_rows


def _weights(form, table, id_key):
    """Rows ``<table>-N-id`` and ``-weight`` as ``[{id_key, weight}]``; rows without an id are
    dropped, an empty weight is 1."""
    items, index = [], 0
    while "%s-%d-id" % (table, index) in form:
        prefix = "%s-%d-" % (table, index)
        item_id = _whole_number(form.get(prefix + "id"))
        if item_id is not None:
            weight = _whole_number(form.get(prefix + "weight"))
            items.append({id_key: item_id, "weight": 1 if weight is None else weight})
        index += 1
    return items


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
