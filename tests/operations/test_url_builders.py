"""The app compiles a route's URL builder on its first use (``tracker.LazyRule``): every route
must build exactly the URL werkzeug's own rules build, with and without extra query arguments,
and a rule built twice gives the same answer (the compiled builder is kept)."""

from werkzeug.routing import Map, Rule

SAMPLES = {"IntegerConverter": 42, "UnicodeConverter": "a b", "PathConverter": "x/y z"}


def sample_values(rule):
    return {name: SAMPLES[type(converter).__name__] for name, converter in rule._converters.items()}


def test_every_route_builds_what_werkzeug_builds(app):
    plain = Map([Rule(r.rule, endpoint=r.endpoint, methods=r.methods) for r in app.url_map.iter_rules()])
    ours, theirs = app.url_map.bind("tracker.example"), plain.bind("tracker.example")
    built = 0
    for rule in app.url_map.iter_rules():
        values = sample_values(rule)
        method = sorted(rule.methods - {"HEAD", "OPTIONS"})[0]
        for extra in ({}, {"page": "2", "q": "ä&b"}):
            expected = theirs.build(rule.endpoint, {**values, **extra}, method=method)
            assert ours.build(rule.endpoint, {**values, **extra}, method=method) == expected
            assert ours.build(rule.endpoint, {**values, **extra}, method=method) == expected
            built += 1
    assert built == 2 * len(list(app.url_map.iter_rules())) > 150
