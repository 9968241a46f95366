"""A flow's routes on its page (DESIGN §4.6, §4.7): the list with each route's share of the
last 7 days' clicks and its figures, ordering, enabling, the route editor, and cloning the
flow. Every change goes through ``flows.clean_flow`` with the flow's whole route list, as
the API's does."""

import datetime

from flask import flash, redirect, render_template, request, url_for

from ..api.shapes import route_to_dict
from ..clickin.routing import FIELDS, OPS, PARAM_PREFIX
from ..errors import ValidationError, found
from ..flows import clean_flow, clone_flow, flow_routes, save_flow
from ..models import ROUTE_ACTIONS, Flow, Lander, Offer, Route
from ..reports.queries import ReportQuery, Row, run_report
from . import bp, forms

BLANK_RULES = 3
BLANK_TARGETS = 2


def _flow_or_404(flow_id):
    return found(Flow, Flow.id == flow_id, Flow.deleted == False, what="flow %d" % flow_id)  # noqa: E712


def _route_or_404(flow, route_id):
    return found(
        Route,
        Route.id == route_id,
        Route.flow == flow,
        Route.deleted == False,  # noqa: E712
        what="route %d of flow %d" % (route_id, flow.id),
    )


def names(model):
    """``{id: name}`` of every lander or offer (deleted ones too: old clicks name them)."""
    return dict(model.select(model.id, model.name).tuples())


def distribution(flow, today):
    """What the flow page shows of its routes, landers and offers over the last 7 days:
    ``{"routes": [(route, share %, row)], "unrouted": share %, "landers": rows, "offers": rows}``;
    shares count every click (bots too: they took the route), figures leave bots out."""
    week = dict(date_from=today - datetime.timedelta(days=6), date_to=today, flow_id=flow.id)
    taken = {row.key: row.clicks for row in run_report(ReportQuery("route", include_bots=True, **week))}
    total = sum(taken.values())
    figures = {row.key: row for row in run_report(ReportQuery("route", **week))}

    def share(key):
        return None if not total else round(100.0 * taken.get(key, 0) / total, 1)

    routes = [(route, share(route.id), figures.get(route.id) or Row(route.id)) for route in flow_routes(flow)]
    return {
        "routes": routes,
        "unrouted": share(None),
        "landers": [row for row in run_report(ReportQuery("lander", **week)) if row.key is not None],
        "offers": [row for row in run_report(ReportQuery("offer", **week)) if row.key is not None],
    }


def save_routes_of(flow, bodies):
    """Save the flow's whole route list (validated as the API's PATCH would)."""
    save_flow(clean_flow({"routes": bodies}, partial=True, flow=flow), flow)


def _change(flow, change, done):
    """Apply ``change(bodies)`` to the flow's route list and save it; flash the outcome."""
    bodies = [route_to_dict(route) for route in flow_routes(flow)]
    change(bodies)
    try:
        save_routes_of(flow, bodies)
    except ValidationError as exc:
        flash("Routes not saved: %s" % exc.message, "error")
    else:
        flash(done)
    return redirect(url_for("dashboard.flow", flow_id=flow.id) + "#routes")


@bp.post("/flows/<int:flow_id>/routes/<int:route_id>/move")
def move_route(flow_id, route_id):
    """Move a route one place up (``direction=up``) or down."""
    flow = _flow_or_404(flow_id)
    _route_or_404(flow, route_id)
    step = -1 if request.form.get("direction") == "up" else 1

    def move(bodies):
        index = next(i for i, body in enumerate(bodies) if body["id"] == route_id)
        other = index + step
        if 0 <= other < len(bodies):
            bodies[index], bodies[other] = bodies[other], bodies[index]

    return _change(flow, move, "Route moved.")


@bp.post("/flows/<int:flow_id>/routes/<int:route_id>/enable")
def enable_route(flow_id, route_id):
    """Enable (``enabled=1``) or disable a route."""
    flow = _flow_or_404(flow_id)
    _route_or_404(flow, route_id)
    enabled = request.form.get("enabled") == "1"

    def toggle(bodies):
        for body in bodies:
            if body["id"] == route_id:
                body["enabled"] = enabled

    return _change(flow, toggle, "Route enabled." if enabled else "Route disabled.")


@bp.post("/flows/<int:flow_id>/routes/<int:route_id>/delete")
def delete_route(flow_id, route_id):
    flow = _flow_or_404(flow_id)
    _route_or_404(flow, route_id)
    return _change(
        flow, lambda bodies: bodies.remove(next(b for b in bodies if b["id"] == route_id)), "Route deleted."
    )


def route_form(flow, route, values, errors=None, status=200):
    """The route editor: name, state, action, a table of rules, weighted landers and offers;
    each refusal next to its field or row."""
    errors = errors or {}
    rules = list(values.get("rules") or []) + [{}] * BLANK_RULES
    return render_template(
        "flows/route_form.html",
        flow=flow,
        route=route,
        values=values,
        rules=rules,
        landers_rows=list(values.get("landers") or []) + [{}] * BLANK_TARGETS,
        offers_rows=list(values.get("offers") or []) + [{}] * BLANK_TARGETS,
        landers=list(Lander.live().order_by(Lander.name)),
        offers=list(Offer.live().order_by(Offer.name)),
        fields=FIELDS,
        param_prefix=PARAM_PREFIX,
        ops=OPS,
        actions=ROUTE_ACTIONS,
        errors=errors,
        general=[message for name, message in errors.items() if name == "general"],
    ), status


def _form_errors(refusal, index, rule_rows):
    """The refusal's reasons for route ``index``, keyed by the editor's fields and rows."""
    errors, prefix = {}, "routes.%d" % index
    for name, message in (refusal.fields or {"general": refusal.message}).items():
        if name.startswith(prefix + ".rules."):
            row = int(name.rsplit(".", 1)[1])
            errors["rules-%d" % (rule_rows[row] if row < len(rule_rows) else row)] = message
        elif name.startswith(prefix + "."):
            errors[name[len(prefix) + 1 :]] = message
        else:
            errors["general"] = errors.get("general", "") + ("; " if "general" in errors else "") + message
    return errors


def _save_from_form(flow, route):
    submitted, rule_rows = forms.route_fields(request.form)
    bodies = [route_to_dict(r) for r in flow_routes(flow)]
    if route is None:
        index = len(bodies)
        bodies.append(submitted)
    else:
        index = next(i for i, body in enumerate(bodies) if body["id"] == route.id)
        bodies[index] = dict(submitted, id=route.id)
    try:
        save_routes_of(flow, bodies)
    except ValidationError as exc:
        values = dict(submitted, rules=_form_rules(request.form))
        return route_form(flow, route, values, _form_errors(exc, index, rule_rows), 422)
    flash("Route saved." if route else "Route added.")
    return redirect(url_for("dashboard.flow", flow_id=flow.id) + "#routes")


def _form_rules(form):
    """The rule rows as typed (empty ones too), to show the form again."""
    rows, index = [], 0
    while "rules-%d-field" % index in form:
        prefix = "rules-%d-" % index
        rows.append(
            {
                "field": form.get(prefix + "field", ""),
                "op": form.get(prefix + "op", ""),
                "text": form.get(prefix + "values", ""),
            }
        )
        index += 1
    while rows and not (rows[-1]["field"].strip() or rows[-1]["text"].strip()):
        rows.pop()  # the blank rows at the end; those between stay, so errors keep their rows
    return rows


@bp.route("/flows/<int:flow_id>/routes/new", methods=["GET", "POST"])
def new_route(flow_id):
    flow = _flow_or_404(flow_id)
    if request.method == "GET":
        return route_form(flow, None, {"enabled": True, "action": "redirect"})
    return _save_from_form(flow, None)


@bp.route("/flows/<int:flow_id>/routes/<int:route_id>/edit", methods=["GET", "POST"])
def edit_route(flow_id, route_id):
    flow = _flow_or_404(flow_id)
    route = _route_or_404(flow, route_id)
    if request.method == "GET":
        values = route_to_dict(route)
        values["rules"] = [
            {"field": rule["field"], "op": rule["op"], "text": ", ".join(rule["values"])}
            for rule in route.rules
        ]
        return route_form(flow, route, values)
    return _save_from_form(flow, route)


@bp.post("/flows/<int:flow_id>/clone")
def clone(flow_id):
    """A copy of the flow with its own link; the copy's page opens."""
    copy = clone_flow(_flow_or_404(flow_id))
    flash("Flow cloned: the copy has its own link; settings, routes, events and postbacks as the original.")
    return redirect(url_for("dashboard.flow", flow_id=copy.id))
