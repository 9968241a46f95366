"""A delivery's URL skips requests' normalization only when that would return it unchanged."""

import requests
from hypothesis import example, given, settings
from hypothesis import strategies as st

from tracker.postbacks.templates import is_plain_url, prepare_url

from conftest import examples

PIECES = st.sampled_from(
    list("aZ09-._~!$&'()*+,;=:@/?%#[] é")
    + ["%41", "%2f", "%2F", "%40", "%7e", "%7E", "%zz", "/./", "/../", ".."]
)


def normalized(url):
    try:
        return requests.Request("GET", url).prepare().url
    except (requests.RequestException, ValueError):
        return None


@settings(max_examples=examples(400), deadline=None)
@given(
    host=st.sampled_from(
        ["a.example", "127.0.0.1:9", "A.example", "a..example", "x.example:080", "x.example:8080"]
    ),
    path=st.lists(PIECES, max_size=8).map("".join),
    query=st.lists(PIECES, max_size=8).map("".join),
)
@example(host="a.example", path="/pb", query="cid=1&email=lead%40example.com")
def test_a_url_taken_as_plain_is_what_requests_sends(host, path, query):
    url = "https://%s/%s%s" % (host, path, "?" + query if query else "")
    if is_plain_url(url):
        assert normalized(url) == url
        assert prepare_url(url) == url


def test_the_usual_postback_url_is_plain_and_odd_ones_are_normalized():
    assert is_plain_url("http://127.0.0.1:9/pb?cid=0abc&payout=1.50&email=lead1%40example.com")
    for url, sent in [
        ("https://a.example?x=1", "https://a.example/?x=1"),
        ("https://a.example/x?y=%41", "https://a.example/x?y=A"),
        ("https://a.example/x?y=%2f", "https://a.example/x?y=%2F"),
        ("https://a.example/a/../b?x=1", "https://a.example/b?x=1"),
        ("https://A.example/x?y=a b", "https://a.example/x?y=a%20b"),
    ]:
        assert not is_plain_url(url)
        assert prepare_url(url) == sent
