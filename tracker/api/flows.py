"""``/api/v1/flows`` and ``/api/v1/traffic-sources``."""

from flask import jsonify

from ..errors import found
from ..flows import (
    clean_flow,
    clean_source,
    clone_flow,
    flow_link,
    save_flow,
    save_source,
    soft_delete_flow,
)
from ..models import Flow, TrafficSource
from ..web import base_url, json_body
from . import bp, page
from .shapes import flow_to_dict, source_to_dict


def _flow(flow_id):
    return found(Flow, Flow.id == flow_id, Flow.deleted == False, what="flow %d" % flow_id)  # noqa: E712


def _source(source_id):
    return found(TrafficSource, TrafficSource.id == source_id, what="traffic source %d" % source_id)


def _flow_json(flow):
    return flow_to_dict(flow, flow_link(flow, base_url()))


@bp.post("/flows")
def create_flow():
    return jsonify(_flow_json(save_flow(clean_flow(json_body())))), 201


@bp.get("/flows")
def list_flows():
    return page(Flow.live(), Flow.id, _flow_json)


@bp.get("/flows/<int:flow_id>")
def get_flow(flow_id):
    return jsonify(_flow_json(_flow(flow_id)))


@bp.patch("/flows/<int:flow_id>")
def update_flow(flow_id):
    flow = _flow(flow_id)
    flow = save_flow(clean_flow(json_body(), partial=True, flow=flow), flow)
    return jsonify(_flow_json(flow))


@bp.post("/flows/<int:flow_id>/clone")
def copy_flow(flow_id):
    """201 with a new flow (its own key and link) with the same settings, routes, events and
    postbacks."""
    return jsonify(_flow_json(clone_flow(_flow(flow_id)))), 201


@bp.delete("/flows/<int:flow_id>")
def delete_flow(flow_id):
    """Soft delete: the link stops working, its clicks and conversions stay in the reports."""
    soft_delete_flow(_flow(flow_id))
    return "", 204


@bp.post("/traffic-sources")
def create_source():
    return jsonify(source_to_dict(save_source(clean_source(json_body())))), 201


@bp.get("/traffic-sources")
def list_sources():
    return page(TrafficSource.select(), TrafficSource.id, source_to_dict)


@bp.get("/traffic-sources/<int:source_id>")
def get_source(source_id):
    return jsonify(source_to_dict(_source(source_id)))


@bp.patch("/traffic-sources/<int:source_id>")
def update_source(source_id):
    source = save_source(clean_source(json_body(), partial=True), _source(source_id))
    return jsonify(source_to_dict(source))
