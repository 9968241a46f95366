"""``/api/v1/deliveries``: outgoing postbacks with every attempt, and resending one."""
from flask import jsonify, request

from ..delivery import delivery_to_dict, retry
from ..flows import ValidationError
from ..models import DELIVERY_STATUSES, Delivery
from . import bool_arg, bp, found_or_404, int_arg, page


@bp.get("/deliveries")
def list_deliveries():
    query = Delivery.select()
    flow_id = int_arg("flow_id")
    if flow_id is not None:
        query = query.where(Delivery.flow_id == flow_id)
    conversion_id = int_arg("conversion_id")
    if conversion_id is not None:
        query = query.where(Delivery.conversion_id == conversion_id)
    click_id = request.args.get("click_id")
    if click_id:
        query = query.where(Delivery.click_id == click_id[:64])
    status = request.args.get("status")
    if status:
        if status not in DELIVERY_STATUSES:
            raise ValidationError("status must be one of %s" % ", ".join(DELIVERY_STATUSES), 400)
        query = query.where(Delivery.status == status)
    test = bool_arg("test")
    if test is not None:
        query = query.where(Delivery.test == test)
    return page(query, Delivery.id, delivery_to_dict)


@bp.get("/deliveries/<int:delivery_id>")
def get_delivery(delivery_id):
    delivery = found_or_404(Delivery, Delivery.id == delivery_id, what="delivery %d" % delivery_id)
    return jsonify(delivery_to_dict(delivery))


@bp.post("/deliveries/<int:delivery_id>/retry")
def retry_delivery(delivery_id):
    """Queue the same request again now; the worker sends it."""
    return jsonify(delivery_to_dict(retry(delivery_id)))
