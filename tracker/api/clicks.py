"""``/api/v1/clicks``: a click by id, and the list of clicks."""
from flask import jsonify

from ..models import Click
from ..clicks import click_to_dict
from . import bp, int_arg, page


@bp.get("/clicks/<click_id>")
def get_click(click_id):
    click = Click.get_or_none(Click.click_id == click_id[:64])
    if click is None:
        return jsonify(error="click %r not found" % click_id[:64]), 404
    return jsonify(click_to_dict(click))


@bp.get("/clicks")
def list_clicks():
    query = Click.select()
    flow_id = int_arg("flow_id")
    if flow_id is not None:
        query = query.where(Click.flow == flow_id)
    return page(query, Click.click_id, click_to_dict, cursor_type=str)
