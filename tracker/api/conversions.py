"""``/api/v1/conversions`` and ``/api/v1/postbacks`` (the inbound log), newest first."""
from flask import jsonify, request

from ..conversions import conversion_to_dict, inbound_to_dict
from ..models import Conversion, InboundRequest
from . import bool_arg, bp, found_or_404, int_arg, page


@bp.get("/conversions")
def list_conversions():
    query = Conversion.select()
    click_id = request.args.get("click_id")
    if click_id:
        query = query.where(Conversion.click == click_id[:64])
    flow_id = int_arg("flow_id")
    if flow_id is not None:
        query = query.where(Conversion.flow == flow_id)
    return page(query, Conversion.id, conversion_to_dict)


@bp.get("/conversions/<int:conversion_id>")
def get_conversion(conversion_id):
    conversion = found_or_404(Conversion, Conversion.id == conversion_id, what="conversion %d" % conversion_id)
    return jsonify(conversion_to_dict(conversion))


@bp.get("/postbacks")
def list_inbound():
    """The inbound log: every /postback and /api/v1/events request, accepted or refused."""
    query = InboundRequest.select()
    flow_id = int_arg("flow_id")
    if flow_id is not None:
        query = query.where(InboundRequest.flow_id == flow_id)
    accepted = bool_arg("accepted")
    if accepted is not None:
        query = query.where(InboundRequest.accepted == accepted)
    for name in ("endpoint", "click_id"):
        value = request.args.get(name)
        if value:
            query = query.where(getattr(InboundRequest, name) == value[:64])
    return page(query, InboundRequest.id, inbound_to_dict)


@bp.get("/postbacks/<int:inbound_id>")
def get_inbound(inbound_id):
    row = found_or_404(InboundRequest, InboundRequest.id == inbound_id, what="inbound request %d" % inbound_id)
    return jsonify(inbound_to_dict(row))
