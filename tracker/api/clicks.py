"""``/api/v1/clicks``: a click by id, and the list of clicks."""
from flask import jsonify

from ..models import Click
from ..clicks import click_to_dict
from . import bp, found_or_404, int_arg, page


@bp.get("/clicks/<click_id>")
def get_click(click_id):
    click = found_or_404(Click, Click.click_id == click_id[:64], what="click %r" % click_id[:64])
    return jsonify(click_to_dict(click))


@bp.get("/clicks")
def list_clicks():
    query = Click.select()
    flow_id = int_arg("flow_id")
    if flow_id is not None:
        query = query.where(Click.flow == flow_id)
    return page(query, Click.click_id, click_to_dict, cursor_type=str)
