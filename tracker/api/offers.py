"""``/api/v1/offers``, ``/api/v1/landers`` and ``/api/v1/bot-rules`` (DESIGN §4.5, §4.7)."""

from flask import jsonify

from ..enrichment.bots import load_bot_rules
from ..errors import found
from ..flows import (
    clean_bot_rules,
    clean_lander,
    clean_offer,
    delete_target,
    save_bot_rules,
    save_lander,
    save_offer,
)
from ..models import Lander, Offer
from ..web import json_body
from . import bp, page
from .shapes import lander_to_dict, offer_to_dict


def _live(model, kind, item_id):
    """The offer or lander ``item_id`` (not deleted); 404 otherwise."""
    return found(model, model.id == item_id, model.deleted == False, what="%s %d" % (kind, item_id))  # noqa: E712


def _offer(offer_id):
    return _live(Offer, "offer", offer_id)


def _lander(lander_id):
    return _live(Lander, "lander", lander_id)


@bp.post("/offers")
def create_offer():
    return jsonify(offer_to_dict(save_offer(clean_offer(json_body())))), 201


@bp.get("/offers")
def list_offers():
    return page(Offer.live(), Offer.id, offer_to_dict)


@bp.get("/offers/<int:offer_id>")
def get_offer(offer_id):
    return jsonify(offer_to_dict(_offer(offer_id)))


@bp.patch("/offers/<int:offer_id>")
def update_offer(offer_id):
    offer = save_offer(clean_offer(json_body(), partial=True), _offer(offer_id))
    return jsonify(offer_to_dict(offer))


@bp.delete("/offers/<int:offer_id>")
def delete_offer(offer_id):
    """204; 409 while a route sends clicks to it. Its clicks keep its name in the reports."""
    delete_target("offer", _offer(offer_id))
    return "", 204


@bp.post("/landers")
def create_lander():
    return jsonify(lander_to_dict(save_lander(clean_lander(json_body())))), 201


@bp.get("/landers")
def list_landers():
    return page(Lander.live(), Lander.id, lander_to_dict)


@bp.get("/landers/<int:lander_id>")
def get_lander(lander_id):
    return jsonify(lander_to_dict(_lander(lander_id)))


@bp.patch("/landers/<int:lander_id>")
def update_lander(lander_id):
    lander = save_lander(clean_lander(json_body(), partial=True), _lander(lander_id))
    return jsonify(lander_to_dict(lander))


@bp.delete("/landers/<int:lander_id>")
def delete_lander(lander_id):
    """204; 409 while a route sends clicks to it."""
    delete_target("lander", _lander(lander_id))
    return "", 204


@bp.get("/bot-rules")
def get_bot_rules():
    return jsonify(load_bot_rules())


@bp.put("/bot-rules")
def put_bot_rules():
    """Replace the bot lists ``{ips: [CIDR, …], user_agents: [substring, …]}``."""
    rules = clean_bot_rules(json_body())
    save_bot_rules(rules)
    return jsonify(rules)
