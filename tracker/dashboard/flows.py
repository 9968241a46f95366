"""Flow pages: the list with today's and the week's numbers, the flow page (link, events,
postbacks), the create / edit / pause / delete forms, and the postback editor with the JSON
routes its script calls (preview, preset, send test)."""

import datetime

from flask import current_app, flash, jsonify, redirect, render_template, request, url_for

from .. import flows as flow_rules
from ..config import time_zone
from ..errors import NotFound, ValidationError, found
from ..flows import (
    clean_flow,
    clean_postback,
    flow_link,
    save_flow,
    save_postback,
    soft_delete_flow,
    source_link,
)
from ..models import (
    PAYOUT_TYPES,
    STATUSES,
    TRIGGERS,
    Flow,
    FlowEvent,
    Lander,
    Offer,
    Postback,
    TrafficSource,
    utcnow,
)
from ..money import money_text
from ..postbacks.templates import TemplateError
from ..reports.queries import Row, flow_numbers, flow_periods
from ..web import base_url, json_body
from . import bp, forms, postback_editor, routes


def _flow_or_404(flow_id):
    return found(Flow, Flow.id == flow_id, Flow.deleted == False, what="flow %d" % flow_id)  # noqa: E712


# What a preset replaces: the settings it does not name go back to their defaults.
PRESET_RESETS = {
    "headers": {},
    "success_body": "",
    "retry_4xx": False,
    "test_event_code": "",
    "statuses": [],
    "payout_type": "all",
}


def _postback_or_404(flow, postback_id):
    return found(
        Postback,
        Postback.id == postback_id,
        Postback.flow == flow,
        what="postback %d of flow %d" % (postback_id, flow.id),
    )


FLOW_SORTS = ("name", "clicks", "conversions", "revenue", "cost", "profit", "roi", "epc")
FLOW_PERIODS = ("today", "yesterday", "period")


@bp.get("/flows")
def flows():
    """Every flow with today's, yesterday's and the period's (default the last 7 days) clicks,
    conversions, revenue, cost, profit, ROI and EPC, sortable by any of them."""
    config = current_app.config
    zone = config["TRACKER_TIMEZONE"]
    today = datetime.datetime.now(time_zone(zone)).date()
    days = request.args.get("days", "7")
    days = int(days) if days in ("7", "14", "30") else 7
    rows = list(Flow.live().order_by(Flow.id.desc()))
    numbers = flow_periods(
        today, today - datetime.timedelta(days=days - 1), today, tz=zone, currency=config["TRACKER_CURRENCY"]
    )
    sort = request.args.get("sort", "")
    period, _, metric = sort.partition(".")
    descending = request.args.get("dir", "desc") != "asc"
    if metric in FLOW_SORTS and period in FLOW_PERIODS:
        position = FLOW_PERIODS.index(period)

        def value(flow):
            row = numbers.get(flow.id)
            figure = getattr(row[position], metric) if row else None
            return (figure is None, -(figure or 0) if descending else (figure or 0), flow.id)

        rows.sort(key=value)
    elif sort == "name":
        rows.sort(key=lambda flow: flow.name.lower(), reverse=descending)
    empty = tuple(Row(None, currency=config["TRACKER_CURRENCY"]) for _ in FLOW_PERIODS)
    return render_template(
        "flows/list.html",
        flows=rows,
        numbers=numbers,
        empty=empty,
        days=days,
        sort=sort,
        descending=descending,
        zone=zone,
        currency=config["TRACKER_CURRENCY"],
        links={flow.id: flow_link(flow, base_url()) for flow in rows},
    )


def _sources():
    return list(TrafficSource.select().order_by(TrafficSource.name))


def _flow_form(flow, values, refusal=None, status=200):
    """The flow form; a ``ValidationError`` ``refusal`` shows each reason next to its field."""
    errors = dict(refusal.fields) if refusal is not None else {}
    error = refusal.message if refusal is not None and not errors else None
    if any(name.startswith("routes") for name in errors):
        error = "; ".join(message for name, message in errors.items() if name.startswith("routes"))
    return render_template(
        "flows/form.html",
        flow=flow,
        values=values,
        error=error,
        errors=errors,
        sources=_sources(),
        default_timezone=current_app.config["TRACKER_TIMEZONE"],
    ), status


def _values_of(flow):
    return {
        "name": flow.name,
        "offer_url": flow.offer_url,
        "payout": money_text(flow.payout),
        "currency": flow.currency,
        "attribution_days": flow.attribution_days or "",
        "fallback_url": flow.fallback_url,
        "traffic_source_id": flow.traffic_source_id or "",
        "timezone": flow.timezone,
        "unique_window_hours": flow.unique_window_hours,
        "bind_visitors": flow.bind_visitors,
    }


@bp.route("/flows/new", methods=["GET", "POST"])
def new_flow():
    if request.method == "GET":
        return _flow_form(None, {"currency": "USD", "payout": "0", "unique_window_hours": 24})
    try:
        flow = save_flow(clean_flow(forms.flow_fields(request.form)))
    except ValidationError as exc:
        return _flow_form(None, request.form, exc, 422)
    flash("Flow created. Copy its tracking link below into your traffic source.")
    return redirect(url_for("dashboard.flow", flow_id=flow.id))


@bp.route("/flows/<int:flow_id>/edit", methods=["GET", "POST"])
def edit_flow(flow_id):
    flow = _flow_or_404(flow_id)
    if request.method == "GET":
        return _flow_form(flow, _values_of(flow))
    try:
        save_flow(clean_flow(forms.flow_fields(request.form), partial=True, flow=flow), flow)
    except ValidationError as exc:
        return _flow_form(flow, request.form, exc, 422)
    flash("Flow saved.")
    return redirect(url_for("dashboard.flow", flow_id=flow.id))


@bp.get("/flows/<int:flow_id>")
def flow(flow_id):
    """The flow page: its tracking link, numbers, events and postbacks."""
    flow = _flow_or_404(flow_id)
    zone = current_app.config["TRACKER_TIMEZONE"]
    day = datetime.datetime.now(time_zone(zone)).date()
    numbers = flow_numbers(day, tz=zone, currency=current_app.config["TRACKER_CURRENCY"])
    today, week = numbers.get(flow.id, (Row(None), Row(None)))
    return render_template(
        "flows/detail.html",
        flow=flow,
        postback_url=base_url().rstrip("/")
        + "/postback?click_id={click_id}&payout={payout}&status={status}&txid={txid}",
        secret_required=bool(current_app.config.get("TRACKER_POSTBACK_SECRET")),
        today=today,
        week=week,
        link=flow_link(flow, base_url()),
        source_link=source_link(flow, base_url()),
        events=list(flow.events.order_by(FlowEvent.id)),
        postbacks=list(flow.postbacks.order_by(Postback.id)),
        dist=routes.distribution(flow, utcnow().date()),
        lander_names=routes.names(Lander),
        offer_names=routes.names(Offer),
        default_timezone=current_app.config["TRACKER_TIMEZONE"],
    )


@bp.post("/flows/<int:flow_id>/pause")
def pause_flow(flow_id):
    """Pause (``paused=1``) or resume (``paused=0``) the flow's link."""
    flow = _flow_or_404(flow_id)
    paused = request.form.get("paused") == "1"
    save_flow(clean_flow({"paused": paused}, partial=True), flow)
    flash("Flow paused: its link now answers 404 (or the fallback URL)." if paused else "Flow resumed.")
    return redirect(url_for("dashboard.flow", flow_id=flow.id))


@bp.post("/flows/<int:flow_id>/delete")
def remove_flow(flow_id):
    flow = _flow_or_404(flow_id)
    soft_delete_flow(flow)
    flash("Flow %s deleted. Its clicks and conversions stay in the reports." % flow.name)
    return redirect(url_for("dashboard.flows"))


@bp.post("/flows/<int:flow_id>/events")
def save_events(flow_id):
    """Replace the flow's events with the submitted table."""
    flow = _flow_or_404(flow_id)
    try:
        save_flow(clean_flow({"events": forms.event_list(request.form)}, partial=True), flow)
    except ValidationError as exc:
        flash("Events not saved: %s" % exc.message, "error")
    else:
        flash("Events saved.")
    return redirect(url_for("dashboard.flow", flow_id=flow.id) + "#events")


def postback_form(flow, postback, values, error=None, status=200, notice=None, test_delivery=None):
    """The postback editor page: the form (``id="postback-form"``) with the preset picker, the
    URL template (``id="postback-url"``) and the preview of its request, beside the token
    reference. ``values`` are the form's fields; ``test_delivery`` a test just queued."""
    groups, preset_inputs = postback_editor.preset_choices()
    preview = postback_editor.preview(
        flow, values.get("url", ""), values.get("trigger"), values.get("headers")
    )
    return render_template(
        "flows/postback_form.html",
        flow=flow,
        postback=postback,
        values=values,
        error=error,
        notice=notice,
        test_delivery=test_delivery,
        preview=preview,
        triggers=TRIGGERS,
        statuses=STATUSES,
        payout_types=PAYOUT_TYPES,
        reference=postback_editor.token_rows(),
        preset_groups=groups,
        preset_inputs=preset_inputs,
    ), status


def _postback_values(postback):
    return {
        "trigger": postback.trigger,
        "name": postback.name,
        "url": postback.url,
        "events": ", ".join(postback.events),
        "statuses": postback.statuses,
        "payout_type": postback.payout_type,
        "enabled": postback.enabled,
        "headers": postback.headers,
        "success_body": postback.success_body,
        "retry_4xx": postback.retry_4xx,
        "test_event_code": postback.test_event_code,
    }


def _submitted(form):
    values = forms.postback_fields(form)
    values["events"] = form.get("events", "")
    values["preset"], values["preset_fields"] = forms.preset_choice(form)
    return values


def _editor_post(flow, postback):
    """Save the postback, or do what the editor's other buttons ask when no script runs:
    fill a preset in, send a test, refresh the preview. Each re-renders the editor as typed."""
    action, values = request.form.get("action", "save"), _submitted(request.form)
    if action == "preset":
        try:
            values.update(
                PRESET_RESETS, **postback_editor.build_preset(values["preset"], values["preset_fields"])
            )
        except (ValidationError, NotFound) as exc:
            return postback_form(flow, postback, values, "Preset not applied: %s" % exc.message, 422)
        return postback_form(
            flow, postback, values, notice="Preset filled in below. Check the preview, then save."
        )
    if action == "test":
        try:
            delivery = postback_editor.send_test(flow, values["url"], forms.request_options(request.form))
        except TemplateError as exc:
            return postback_form(flow, postback, values, "Test not sent: %s" % exc.message, 422)
        return postback_form(flow, postback, values, test_delivery=delivery)
    if action == "preview":
        return postback_form(flow, postback, values)
    try:
        save_postback(clean_postback(forms.postback_fields(request.form)), flow, postback)
    except ValidationError as exc:
        return postback_form(flow, postback, values, exc.message, 422)
    flash("Postback saved." if postback else "Postback added.")
    return redirect(url_for("dashboard.flow", flow_id=flow.id) + "#postbacks")


@bp.route("/flows/<int:flow_id>/postbacks/new", methods=["GET", "POST"])
def new_postback(flow_id):
    flow = _flow_or_404(flow_id)
    if request.method == "GET":
        return postback_form(
            flow, None, {"trigger": "conversion", "payout_type": "all", "enabled": True, "statuses": []}
        )
    return _editor_post(flow, None)


@bp.route("/flows/<int:flow_id>/postbacks/<int:postback_id>/edit", methods=["GET", "POST"])
def edit_postback(flow_id, postback_id):
    flow = _flow_or_404(flow_id)
    postback = _postback_or_404(flow, postback_id)
    if request.method == "GET":
        return postback_form(flow, postback, _postback_values(postback))
    return _editor_post(flow, postback)


@bp.post("/flows/<int:flow_id>/postbacks/preview")
def preview_postback(flow_id):
    """JSON ``{url, trigger}`` → the editor's preview: ``{request, error, warnings, subject, html}``."""
    flow, body = _flow_or_404(flow_id), json_body()
    headers = forms.parse_headers(body.get("headers"))
    preview = postback_editor.preview(flow, body.get("url"), body.get("trigger"), headers)
    return jsonify(dict(preview, html=render_template("flows/_preview.html", preview=preview)))


@bp.post("/flows/<int:flow_id>/postbacks/preset")
def fill_preset(flow_id):
    """JSON ``{preset, fields}`` → the postback of that preset (``{trigger, url, headers?, …}``,
    with ``headers_text`` as the editor shows them), or ``{error}``."""
    _flow_or_404(flow_id)
    body = json_body()
    built = postback_editor.build_preset(body.get("preset"), body.get("fields", {}))
    return jsonify(dict(built, headers_text=forms.headers_text(built.get("headers"))))


@bp.post("/flows/<int:flow_id>/postbacks/test")
def test_postback(flow_id):
    """JSON ``{url, headers?, success_body?, retry_4xx?, test_event_code?}`` → 201
    ``{id, status, link, html}`` of the test delivery queued, or 422 ``{error}``."""
    flow, body = _flow_or_404(flow_id), json_body()
    try:
        delivery = postback_editor.send_test(flow, body.get("url"), forms.request_options(body))
    except TemplateError as exc:
        return jsonify(error=exc.message), 422
    return jsonify(
        id=delivery.id,
        status=delivery.status,
        link=url_for("dashboard.delivery", delivery_id=delivery.id),
        html=render_template("flows/_test_result.html", delivery=delivery),
    ), 201


@bp.post("/flows/<int:flow_id>/postbacks/<int:postback_id>/delete")
def delete_postback(flow_id, postback_id):
    flow = _flow_or_404(flow_id)
    flow_rules.delete_postback(_postback_or_404(flow, postback_id))
    flash("Postback deleted.")
    return redirect(url_for("dashboard.flow", flow_id=flow.id) + "#postbacks")
