"""``/api/v1/clicks``: a click by id, and the list of clicks."""

from flask import jsonify

from .. import logs
from ..errors import found
from ..models import Click
from ..web import int_arg
from . import bp, page
from .shapes import click_to_dict


@bp.get("/clicks/<click_id>")
def get_click(click_id):
    click = found(Click, Click.click_id == click_id[:64], what="click %r" % click_id[:64])
    return jsonify(click_to_dict(click))


@bp.get("/clicks")
def list_clicks():
    return page(logs.clicks(flow_id=int_arg("flow_id")), Click.click_id, click_to_dict, cursor_type=str)
