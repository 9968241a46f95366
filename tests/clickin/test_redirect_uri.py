"""The Location of a click's redirect: werkzeug's iri_to_uri, skipped for plain URIs."""

from hypothesis import given, settings
from hypothesis import strategies as st
from werkzeug.urls import iri_to_uri

from tracker.clickin.wsgi import PLAIN_URI, as_uri

from conftest import examples


@settings(max_examples=examples(400), deadline=None)
@given(st.from_regex(PLAIN_URI, fullmatch=True))
def test_a_plain_uri_is_what_iri_to_uri_would_return(url):
    try:
        expected = iri_to_uri(url)
    except ValueError:  # port out of range, empty host label: iri_to_uri gives up
        expected = url
    assert as_uri(url) == expected


def test_anything_else_goes_through_iri_to_uri():
    for url in [
        "https://Offer.example/",
        "https://bücher.example/straße?q=ö",
        "https://o.example/a b",
        "https://o.example/?",
        "https://o.example/#top",
        "https://user@o.example/",
        "https://o.example:080/",
        "https://o.example/?q=<x>&r={y}",
    ]:
        assert not PLAIN_URI.fullmatch(url)
        assert as_uri(url) == iri_to_uri(url)


def test_a_url_iri_to_uri_rejects_is_still_sent():
    assert as_uri("https://o.example:99999/ü") == "https://o.example:99999/%C3%BC"
    assert as_uri("https://a..b/") == "https://a..b/"
