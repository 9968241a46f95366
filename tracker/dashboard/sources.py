"""Traffic source pages: the list, and the create / edit form."""

from flask import flash, redirect, render_template, request, url_for
from peewee import fn

from ..errors import ValidationError, found
from ..flows import clean_source, save_source
from ..models import VAR_NAMES, Flow, TrafficSource
from . import bp, forms


def _source_form(source, values, error=None, status=200):
    return render_template(
        "sources/form.html", source=source, values=values, error=error, var_names=VAR_NAMES
    ), status


def _values_of(source):
    values = {
        "name": source.name,
        "click_id_param": source.click_id_param,
        "postback_url": source.postback_url,
        "postback_events": ", ".join(source.postback_events),
        "active": source.active,
    }
    values.update(source.vars or {})
    return values


@bp.get("/sources")
def sources():
    rows = list(TrafficSource.select().order_by(TrafficSource.name))
    in_use = dict(
        Flow.live(Flow.traffic_source, fn.COUNT(Flow.id))
        .where(Flow.traffic_source.is_null(False))
        .group_by(Flow.traffic_source)
        .tuples()
    )
    return render_template("sources/list.html", sources=rows, in_use=in_use)


@bp.route("/sources/new", methods=["GET", "POST"])
def new_source():
    if request.method == "GET":
        return _source_form(None, {"active": True})
    try:
        save_source(clean_source(forms.source_fields(request.form)))
    except ValidationError as exc:
        return _source_form(None, request.form, exc.message, 422)
    flash("Traffic source created. Pick it on a flow to get a ready-made tracking link.")
    return redirect(url_for("dashboard.sources"))


@bp.route("/sources/<int:source_id>/edit", methods=["GET", "POST"])
def edit_source(source_id):
    source = found(TrafficSource, TrafficSource.id == source_id, what="traffic source %d" % source_id)
    if request.method == "GET":
        return _source_form(source, _values_of(source))
    try:
        save_source(clean_source(forms.source_fields(request.form)), source)
    except ValidationError as exc:
        return _source_form(source, request.form, exc.message, 422)
    flash("Traffic source saved.")
    return redirect(url_for("dashboard.sources"))
