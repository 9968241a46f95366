"""Offers and landers as pages of their own, each with its last 7 days' figures (DESIGN §4.6),
and the bot lists (§4.7)."""

import datetime

from flask import flash, redirect, render_template, request, url_for

from ..enrichment.bots import load_bot_rules
from ..errors import ValidationError, found
from ..flows import (
    clean_bot_rules,
    clean_lander,
    clean_offer,
    delete_target,
    routes_using,
    save_bot_rules,
    save_lander,
    save_offer,
)
from ..models import Lander, Offer, utcnow
from ..reports.queries import ReportQuery, Row, run_report
from . import bp, forms

KINDS = {
    "offer": (Offer, clean_offer, save_offer, "Offers"),
    "lander": (Lander, clean_lander, save_lander, "Landers"),
}


def _week_figures(kind):
    """``{id: Row}`` of every lander or offer over the last 7 days (bots left out)."""
    today = utcnow().date()
    query = ReportQuery(kind, today - datetime.timedelta(days=6), today)
    return {row.key: row for row in run_report(query) if row.key is not None}


def _list(kind):
    model, _, _, title = KINDS[kind]
    figures = _week_figures(kind)
    rows = [
        (item, figures.get(item.id) or Row(item.id)) for item in model.live().order_by(model.name, model.id)
    ]
    return render_template("offers/list.html", kind=kind, title=title, rows=rows)


def _item(kind, item_id):
    model = KINDS[kind][0]
    return found(model, model.id == item_id, model.deleted == False, what="%s %d" % (kind, item_id))  # noqa: E712


def _form(kind, item, values, refusal=None, status=200):
    errors = dict(refusal.fields) if refusal is not None and refusal.fields else {}
    error = refusal.message if refusal is not None and not errors else None
    used_by = routes_using(kind, item.id) if item is not None else []
    return render_template(
        "offers/form.html", kind=kind, item=item, values=values, errors=errors, error=error, used_by=used_by
    ), status


def _save(kind, item):
    _, clean, save, _ = KINDS[kind]
    values = forms.target_fields(request.form, kind)
    try:
        save(clean(values), item)
    except ValidationError as exc:
        return _form(kind, item, request.form, exc, 422)
    flash(
        "%s saved." % kind.capitalize()
        if item
        else "%s created. Pick it in a flow's route." % kind.capitalize()
    )
    return redirect(url_for("dashboard.%ss" % kind))


def _values_of(item):
    values = {"name": item.name, "url": item.url}
    if isinstance(item, Offer):
        values.update(payout=item.payout, currency=item.currency)
    return values


def _delete(kind, item_id):
    item = _item(kind, item_id)
    try:
        delete_target(kind, item)
    except ValidationError as exc:
        flash("Not deleted: %s" % exc.message, "error")
    else:
        flash("%s %s deleted. Its clicks stay in the reports." % (kind.capitalize(), item.name))
    return redirect(url_for("dashboard.%ss" % kind))


@bp.get("/offers")
def offers():
    return _list("offer")


@bp.route("/offers/new", methods=["GET", "POST"])
def new_offer():
    if request.method == "GET":
        return _form("offer", None, {"payout": "0", "currency": "USD"})
    return _save("offer", None)


@bp.route("/offers/<int:offer_id>/edit", methods=["GET", "POST"])
def edit_offer(offer_id):
    offer = _item("offer", offer_id)
    if request.method == "GET":
        return _form("offer", offer, _values_of(offer))
    return _save("offer", offer)


@bp.post("/offers/<int:offer_id>/delete")
def delete_offer(offer_id):
    return _delete("offer", offer_id)


@bp.get("/landers")
def landers():
    return _list("lander")


@bp.route("/landers/new", methods=["GET", "POST"])
def new_lander():
    if request.method == "GET":
        return _form("lander", None, {})
    return _save("lander", None)


@bp.route("/landers/<int:lander_id>/edit", methods=["GET", "POST"])
def edit_lander(lander_id):
    lander = _item("lander", lander_id)
    if request.method == "GET":
        return _form("lander", lander, _values_of(lander))
    return _save("lander", lander)


@bp.post("/landers/<int:lander_id>/delete")
def delete_lander(lander_id):
    return _delete("lander", lander_id)


@bp.route("/bots", methods=["GET", "POST"])
def bots():
    """The bot lists: IP addresses and CIDR blocks, user-agent substrings."""
    if request.method == "GET":
        rules = load_bot_rules()
        values = {"ips": "\n".join(rules["ips"]), "user_agents": "\n".join(rules["user_agents"])}
        return render_template("bots.html", values=values, errors={})
    try:
        save_bot_rules(clean_bot_rules(forms.bot_fields(request.form)))
    except ValidationError as exc:
        return render_template(
            "bots.html", values=request.form, errors=exc.fields or {"ips": exc.message}
        ), 422
    flash("Bot lists saved. New clicks matching them are marked as bots.")
    return redirect(url_for("dashboard.bots"))
