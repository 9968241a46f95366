"""Real-browser fixtures: Chromium driven by Playwright, screenshots of each page.

The fixtures are registered once, in ``conftest.py``; use ``Screenshots.attached()`` so a
failure lists every screenshot taken so far.
"""

import os
import re
import time
from contextlib import contextmanager

import pytest

DEBIAN_CHROMIUM = "/usr/bin/chromium"
HOW_TO_GET_ONE = (
    "install Debian's Chromium (apt-get install -y chromium, as .ci/run does) "
    "or Playwright's (python -m playwright install chromium)"
)
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
LAPTOP = {"width": 1366, "height": 850}
PHONE = {"width": 390, "height": 844}
SETUP_LINK_RE = re.compile(r"(https?://\S+/setup\?token=[\w\-]+)")


def find_chromium(playwright):
    """The Chromium to drive: Debian's, else one Playwright installed; None when neither is."""
    if os.access(DEBIAN_CHROMIUM, os.X_OK):
        return DEBIAN_CHROMIUM
    bundled = playwright.chromium.executable_path
    return bundled if bundled and os.access(bundled, os.X_OK) else None


@pytest.fixture(scope="session")
def browser():
    """One headless Chromium for the whole session. Without one the browser tests skip and
    say how to get one, except in CI (``CI`` set), where a missing browser is a failure:
    the dashboard's end-to-end proof must not vanish silently there."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        executable = find_chromium(playwright)
        if executable is None:
            message = "no Chromium found: " + HOW_TO_GET_ONE
            if os.environ.get("CI"):
                pytest.fail(message + " (CI is set: browser tests must run)")
            pytest.skip(message)
        chromium = playwright.chromium.launch(executable_path=executable, headless=True, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


class Screenshots:
    """Saves full-page screenshots into the test's tmp_path and names them on failure."""

    def __init__(self, directory):
        self.directory = directory
        self.paths = []
        self.page = None

    def take(self, page, name):
        self.page = page
        path = self.directory / ("%02d-%s.png" % (len(self.paths) + 1, name))
        page.screenshot(path=str(path), full_page=True)
        self.paths.append(path)
        return path

    @contextmanager
    def attached(self):
        """Re-raise any failure inside as an AssertionError listing the screenshots (and one
        of the page as it was when it failed)."""
        try:
            yield self
        except Exception as exc:
            if self.page is not None:
                try:
                    self.take(self.page, "at-failure")
                except Exception:
                    pass
            listing = "\n".join(str(path) for path in self.paths) or "(none taken)"
            raise AssertionError("%s\n\nscreenshots:\n%s" % (exc, listing)) from exc


@pytest.fixture
def screenshots(tmp_path):
    return Screenshots(tmp_path)


def new_page(browser, base_url, viewport=LAPTOP, also=()):
    """A page in a fresh context that may only reach ``base_url`` (and the URLs ``also``
    starts with): any other request is refused and kept in ``page.outside`` (the dashboard
    must fetch nothing from the internet)."""
    context = browser.new_context(viewport=viewport, base_url=base_url)
    context.set_default_timeout(15000)
    page = context.new_page()
    page.outside = []
    allowed = (base_url, *also)

    def only_loopback(route):
        if route.request.url.startswith(allowed):
            route.continue_()
        else:
            page.outside.append(route.request.url)
            route.abort()

    context.route("**/*", only_loopback)
    return page


def setup_link(server, timeout=15):
    """The one-time setup link ``tracker serve`` printed in its log."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        match = SETUP_LINK_RE.search(server.log())
        if match:
            return match.group(1)
        time.sleep(0.1)
    raise AssertionError("no setup link in the server's log:\n" + server.log())


def scroll_width(page):
    """How wide the page is drawn: wider than the viewport means it scrolls sideways."""
    return page.evaluate("document.documentElement.scrollWidth")


def first_admin(browser, server, password, also=()):
    """Create the first admin ("buyer") through the setup link, then log in on a fresh page
    (that may also reach the URLs ``also`` starts with)."""
    setup = new_page(browser, server.url)
    setup.goto(setup_link(server))
    setup.fill("input[name=username]", "buyer")
    setup.fill("input[name=password]", password)
    setup.fill("input[name=confirm]", password)
    setup.click("button[type=submit]")
    setup.wait_for_url(server.url + "/flows")
    setup.context.close()
    page = new_page(browser, server.url, also=also)
    log_in(page, "buyer", password)
    page.wait_for_url(server.url + "/flows")
    return page


def log_in(page, username, password):
    """Log in through the login form."""
    page.goto("/login")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
