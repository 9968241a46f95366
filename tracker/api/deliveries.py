"""``/api/v1/deliveries``: outgoing postbacks with every attempt, and resending one."""

from flask import jsonify

from .. import logs
from ..delivery.queue import retry
from ..errors import found
from ..models import Delivery
from ..web import bool_arg, int_arg, text_arg
from . import bp, page
from .shapes import delivery_to_dict


@bp.get("/deliveries")
def list_deliveries():
    query = logs.deliveries(
        flow_id=int_arg("flow_id"),
        conversion_id=int_arg("conversion_id"),
        click_id=text_arg("click_id"),
        status=text_arg("status"),
        test=bool_arg("test"),
    )
    return page(query, Delivery.id, delivery_to_dict)


@bp.get("/deliveries/<int:delivery_id>")
def get_delivery(delivery_id):
    delivery = found(Delivery, Delivery.id == delivery_id, what="delivery %d" % delivery_id)
    return jsonify(delivery_to_dict(delivery))


@bp.post("/deliveries/<int:delivery_id>/retry")
def retry_delivery(delivery_id):
    """Queue the same request again now; the worker sends it."""
    return jsonify(delivery_to_dict(retry(delivery_id)))
