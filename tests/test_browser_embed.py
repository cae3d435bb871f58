"""The widget, the embed page and the demo gallery in headless Chromium against a real server.

The API runs as a real server on one loopback origin; the "gallery" host pages are served by a plain
http.server on another (a different host name and port), so every widget request is cross-origin.
Screenshots land in test-artifacts/. Needs Debian's chromium and chromium-driver
(scripts/install-browser.sh) and selenium; skipped without them.
"""

from __future__ import annotations

import functools
import http.server
import json
import os
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

selenium = pytest.importorskip("selenium", reason="pip install selenium for the browser tests")

from selenium import webdriver  # noqa: E402
from selenium.common.exceptions import NoAlertPresentException, TimeoutException  # noqa: E402
from selenium.webdriver.chrome.service import Service as DriverService  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402
from selenium.webdriver.support import expected_conditions as EC  # noqa: E402
from selenium.webdriver.support.ui import Select, WebDriverWait  # noqa: E402

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
HOSTILE_TITLE = "<img src=x onerror=alert(1)>"
HOSTILE_ID = "hostile-1"
WAIT_S = 30

# No rate limit: the tests, not the limiter, decide how many requests they send.
SERVER_ENV = {"CRITIC_RATE_LIMIT": "off", "CRITIC_GENERATION_RATE_LIMIT": "off", "CRITIC_LOG_REQUESTS": "0"}

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not (CHROMIUM.exists() and CHROMEDRIVER.exists()),
        reason="no /usr/bin/chromium or /usr/bin/chromedriver: run scripts/install-browser.sh",
    ),
]


# ------------------------------------------------------------------ the servers


@pytest.fixture(scope="module")
def browser_home(built_home, tmp_path_factory):
    """A copy of the built home with one artwork whose title and creator are HTML, close to a known one.

    Returns (home, the id of an artwork whose 6 most similar include the hostile one).
    """
    from api.testing import copy_home
    from critic.records import Artwork
    from critic.service import Service
    from index.recommend import SimilarQuery

    home = copy_home(built_home, tmp_path_factory.mktemp("browser") / "home")
    service = Service.load(home, log=lambda _: None)
    model = next(r for r in service.store.all() if len(r.description) > 200)
    hostile = Artwork.from_dict(
        {
            **model.to_dict(),
            "id": HOSTILE_ID,
            "title": HOSTILE_TITLE,
            "creators": ["<script>alert(2)</script>"],
            "image_url": "javascript:alert(3)",
            "url": "javascript:alert(4)",
        }
    )
    service.upsert([hostile])
    for neighbour in service.recommender.search(SimilarQuery(id=HOSTILE_ID, k=20)).results:
        shown = service.recommender.search(SimilarQuery(id=neighbour.id, k=6)).results
        if HOSTILE_ID in {r.id for r in shown}:
            return home, neighbour.id
    pytest.fail("no artwork lists the hostile record among its 6 most similar")


def _embed_is_wired() -> bool:
    from api.app import blueprints

    return any(blueprint.name == "embed" for blueprint in blueprints())


class _AppServer:
    """The app with the embed blueprint added, under werkzeug's threaded server, until api.app wires it in."""

    def __init__(self, home: Path, log: Path):
        from api.testing import free_port

        self.port = free_port()
        self.log = log
        code = (
            "from api.app import create_app; from api.widget import embed_bp; "
            "from werkzeug.serving import run_simple; "
            f"app = create_app({{'HOME': {str(home)!r}, 'LOAD_IN_BACKGROUND': False}}); "
            "app.register_blueprint(embed_bp); "
            f"run_simple('127.0.0.1', {self.port}, app, threaded=True)"
        )
        env = {**os.environ, "HF_HUB_OFFLINE": "1", **SERVER_ENV}
        with open(log, "wb") as out:
            self.process = subprocess.Popen([sys.executable, "-c", code], env=env, stdout=out, stderr=subprocess.STDOUT)

    def url(self, path: str = "") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def start(self) -> _AppServer:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and self.process.poll() is None:
            try:
                with urllib.request.urlopen(self.url("/api/v1/readyz"), timeout=2) as response:
                    if json.load(response).get("status") == "ready":
                        return self
            except (OSError, ValueError):
                time.sleep(0.25)
        self.stop()
        tail = "\n".join(self.log.read_text(errors="replace").splitlines()[-30:])
        raise RuntimeError(f"the app server did not get ready:\n{tail}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(30)


@pytest.fixture(scope="module")
def api_server(browser_home):
    """The API (with the widget, embed page and demo) on http://127.0.0.1:<port>."""
    home, _ = browser_home
    if _embed_is_wired():
        from api.testing import LiveServer

        server = LiveServer(home.root, workers=1, env=SERVER_ENV)
    else:
        server = _AppServer(home.root, home.root.parent / "server.log")
    server.start()
    yield server
    server.stop()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


@pytest.fixture(scope="module")
def host_site(tmp_path_factory):
    """A static "gallery" site on http://localhost:<another port>; write pages into .root."""
    root = tmp_path_factory.mktemp("host-site")
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_QuietHandler, directory=root))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    server.root = root
    server.url = lambda page: f"http://localhost:{server.server_address[1]}/{page}"
    yield server
    server.shutdown()
    server.server_close()


def host_page(site, name: str, body: str) -> str:
    """Write a host page around ``body`` and return its URL."""
    page = (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'><title>A gallery</title>"
        "<style>body{font-family:Georgia,serif;max-width:60rem;margin:2rem auto;padding:0 1rem}</style></head>"
        f"<body><h1 id='host-title'>The Gallery's own page</h1><p id='host-text'>Our own content.</p>{body}"
        "<p><a id='host-link' href='#later'>A link of the host page</a></p></body></html>"
    )
    (site.root / name).write_text(page, encoding="utf-8")
    return site.url(name)


# ------------------------------------------------------------------ the browser


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--window-size=1280,900",
        f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}",
    ):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    options.set_capability("unhandledPromptBehavior", "ignore")  # a script's alert() must stay visible to us
    driver = webdriver.Chrome(service=DriverService(str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(WAIT_S)
    ARTIFACTS.mkdir(exist_ok=True)
    yield driver
    driver.quit()


def wait(driver, condition, timeout: float = WAIT_S):
    return WebDriverWait(driver, timeout).until(condition)


def count_at_least(selector: str, n: int):
    return lambda d: len(d.find_elements(By.CSS_SELECTOR, selector)) >= n or None


def settled(selector: str):
    """The widget element at selector has finished drawing (succeeded or failed)."""
    return lambda d: (
        d.find_element(By.CSS_SELECTOR, selector).get_attribute("aria-busy") is None
        and (
            d.find_elements(
                By.CSS_SELECTOR, f"{selector} .critic-w-item, {selector} .critic-w-message, {selector} .critic-w-draft"
            )
        )
    )


def screenshot(driver, name: str) -> None:
    """The whole page, not just the viewport: the window grows to the page's height for the shot."""
    size = driver.get_window_size()
    height = driver.execute_script("return document.documentElement.scrollHeight")
    chrome = size["height"] - driver.execute_script("return window.innerHeight")
    driver.set_window_size(size["width"], min(max(height + chrome, size["height"]), 6000))
    try:
        driver.save_screenshot(str(ARTIFACTS / f"{name}.png"))
    finally:
        driver.set_window_size(size["width"], size["height"])


def assert_no_alert(driver) -> None:
    try:
        text = driver.switch_to.alert.text
    except NoAlertPresentException:
        return
    pytest.fail(f"a script ran an alert({text!r})")


def csp_violations(driver) -> list[str]:
    return [e["message"] for e in driver.get_log("browser") if "Content Security Policy" in e["message"]]


def critique_status(server, artwork_id: str) -> int:
    """The status the API answers a label critique with."""
    try:
        with urllib.request.urlopen(server.url(f"/api/v1/artworks/{artwork_id}/critique?tone=label"), timeout=60):
            return 200
    except urllib.error.HTTPError as error:
        return error.code


# ------------------------------------------------------------------ the widget on a gallery's page


def test_widget_on_another_origin_shows_k_similar_artworks(browser, api_server, host_site, browser_home):
    _, artwork_id = browser_home
    url = host_page(
        host_site,
        "widget.html",
        f'<script src="{api_server.url("/widget.js")}" async></script>'
        f'<div id="strip" data-critic-similar="{artwork_id}" data-k="5"></div>'
        f'<div id="label" data-critic-critique="{artwork_id}" data-tone="label"></div>',
    )
    browser.get(url)
    wait(browser, count_at_least("#strip .critic-w-item", 5))
    items = browser.find_elements(By.CSS_SELECTOR, "#strip .critic-w-item")
    assert len(items) == 5
    assert browser.execute_script("return location.origin") != api_server.url()
    for item in items:
        link = item.find_element(By.CSS_SELECTOR, "a.critic-w-link")
        assert link.get_attribute("href").startswith(("http://", "https://"))
        assert "Similarity" in link.get_attribute("title")
        assert item.find_element(By.CSS_SELECTOR, ".critic-w-title").text.strip()
    # No image loads here (no internet): every frame falls back to the placeholder.
    wait(browser, count_at_least("#strip .critic-w-frame.critic-w-noimage", 5))
    wait(browser, settled("#label"), timeout=90)
    screenshot(browser, "widget-on-host-page")
    assert browser.find_element(By.ID, "host-text").text == "Our own content."
    assert not csp_violations(browser)


def test_critique_widget_shows_a_draft_marked_text(browser, api_server, host_site, browser_home):
    _, artwork_id = browser_home
    # Without a trained writer the service drafts by retrieval, so anything but a 200 is a fault: a 5xx above all.
    status = critique_status(api_server, artwork_id)
    assert status == 200, f"the API answers GET /artworks/{artwork_id}/critique with {status}"
    url = host_page(
        host_site,
        "critique.html",
        f'<script src="{api_server.url("/widget.js")}" async></script>'
        f'<div id="label" data-critic-critique="{artwork_id}" data-tone="critique"></div>',
    )
    browser.get(url)
    wait(browser, settled("#label"), timeout=90)
    marker = browser.find_element(By.CSS_SELECTOR, "#label .critic-w-draft-mark")
    assert marker.text.lower() == "draft"
    text = browser.find_element(By.ID, "label").text
    assert len(text.split()) > 20
    screenshot(browser, "critique-widget-on-host-page")


def test_critique_widget_says_so_when_the_api_errors(browser, api_server, host_site):
    url = host_page(
        host_site,
        "critique-missing.html",
        f'<script src="{api_server.url("/widget.js")}" async></script>'
        '<div id="label" data-critic-critique="no-such-artwork" data-tone="label"></div>',
    )
    browser.get(url)
    wait(browser, settled("#label"))
    assert "unavailable" in browser.find_element(By.CSS_SELECTOR, "#label .critic-w-message").text
    assert not browser.find_elements(By.CSS_SELECTOR, "#label .critic-w-draft")


def test_widget_degrades_quietly_when_the_api_is_down(browser, api_server, host_site):
    from api.testing import free_port

    dead = f"http://127.0.0.1:{free_port()}"
    url = host_page(
        host_site,
        "down.html",
        f'<script src="{api_server.url("/widget.js")}" data-critic-api="{dead}" async></script>'
        '<div id="strip" data-critic-similar="2" data-k="6"></div>'
        '<div id="label" data-critic-critique="2"></div>',
    )
    browser.get(url)
    wait(browser, settled("#strip"))
    wait(browser, settled("#label"))
    assert browser.find_element(By.CSS_SELECTOR, "#strip .critic-w-message").text == (
        "Similar artworks are unavailable right now."
    )
    assert "unavailable" in browser.find_element(By.CSS_SELECTOR, "#label .critic-w-message").text
    browser.find_element(By.ID, "host-link").click()  # the host page still works
    assert browser.current_url.endswith("#later")
    screenshot(browser, "widget-with-api-down")


def test_oembed_iframe_renders_on_another_origin(browser, api_server, host_site, browser_home):
    _, artwork_id = browser_home
    page_url = api_server.url(f"/embed/similar/{artwork_id}?k=4")
    query = urllib.parse.urlencode({"url": page_url, "format": "json", "maxwidth": 560})
    with urllib.request.urlopen(api_server.url(f"/oembed?{query}")) as response:
        embed = json.load(response)
    assert embed["type"] == "rich" and embed["width"] == 560
    browser.get(host_page(host_site, "oembed.html", embed["html"]))
    frame = wait(browser, EC.presence_of_element_located((By.TAG_NAME, "iframe")))
    browser.switch_to.frame(frame)
    try:
        wait(browser, count_at_least(".critic-w-item", 4))
        assert len(browser.find_elements(By.CSS_SELECTOR, ".critic-w-item")) == 4
        assert not csp_violations(browser)
    finally:
        browser.switch_to.default_content()
    screenshot(browser, "oembed-iframe-on-host-page")


def test_hostile_strings_render_as_text_in_the_widget(browser, api_server, host_site, browser_home):
    _, artwork_id = browser_home
    browser.get(
        host_page(
            host_site,
            "hostile.html",
            f'<script src="{api_server.url("/widget.js")}"></script>'
            f'<div id="strip" data-critic-similar="{artwork_id}" data-k="6"></div>',
        )
    )
    item = wait(browser, EC.presence_of_element_located((By.CSS_SELECTOR, f'#strip [data-id="{HOSTILE_ID}"]')))
    assert item.find_element(By.CSS_SELECTOR, ".critic-w-title").text == HOSTILE_TITLE
    assert item.find_element(By.CSS_SELECTOR, ".critic-w-creator").text == "<script>alert(2)</script>"
    # A javascript: url is no link target and no image source.
    assert not item.find_elements(By.CSS_SELECTOR, "img")
    assert item.find_element(By.CSS_SELECTOR, "a").get_attribute("href").startswith(api_server.url("/#/artwork/"))
    assert not browser.find_elements(By.CSS_SELECTOR, 'img[src="x"], #strip script')
    assert_no_alert(browser)


# ------------------------------------------------------------------ the demo gallery


def cards(driver) -> list:
    return driver.find_elements(By.CSS_SELECTOR, "#results .card")


def test_demo_search_filter_artwork_page_and_critique(browser, api_server, browser_home):
    browser.get(api_server.url("/"))
    wait(browser, count_at_least("#results .card", 24))
    assert "artworks" in browser.find_element(By.ID, "status").text
    screenshot(browser, "demo-collection")

    box = browser.find_element(By.ID, "q")
    box.send_keys("portrait of a woman in oil paint", Keys.ENTER)
    wait(browser, EC.text_to_be_present_in_element((By.ID, "status"), "Closest matches"))
    wait(browser, count_at_least("#results .card", 1))
    assert "q=portrait" in browser.current_url

    # A filter narrows the search, then the browsing without text.
    chooser = Select(browser.find_element(By.ID, "f-classification"))
    wait(browser, lambda d: len(chooser.options) > 2)
    chosen = chooser.options[1].get_attribute("value")
    chooser.select_by_value(chosen)
    wait(browser, EC.text_to_be_present_in_element((By.ID, "status"), f"in {chosen}"))
    assert "Closest matches" in browser.find_element(By.ID, "status").text
    assert cards(browser) and all(chosen in card.text for card in cards(browser))
    box.clear()
    box.send_keys(Keys.ENTER)
    wait(browser, EC.text_to_be_present_in_element((By.ID, "status"), f"artworks in {chosen}"))
    shown = cards(browser)
    assert shown and all(chosen in card.text for card in shown)
    assert chooser.first_selected_option.get_attribute("value") == chosen
    screenshot(browser, "demo-filtered")

    # Keyboard only: focus the first card's link and open it.
    first = shown[0].find_element(By.CSS_SELECTOR, "a")
    title = shown[0].find_element(By.CSS_SELECTOR, ".card-title").text
    browser.execute_script("arguments[0].focus()", first)
    browser.switch_to.active_element.send_keys(Keys.ENTER)
    wait(browser, EC.text_to_be_present_in_element((By.ID, "art-title"), title))
    assert browser.switch_to.active_element.get_attribute("id") == "art-title"
    assert browser.find_elements(By.CSS_SELECTOR, "#art-facts dt")
    wait(browser, count_at_least("#similar .critic-w-item", 8))
    before = [e.get_attribute("data-id") for e in browser.find_elements(By.CSS_SELECTOR, "#similar .critic-w-item")]

    slider = browser.find_element(By.ID, "diversity")
    slider.send_keys(*[Keys.ARROW_RIGHT] * 8)
    assert browser.find_element(By.ID, "diversity-value").text == "0.8"
    wait(browser, lambda d: d.find_element(By.ID, "similar").get_attribute("data-diversity") == "0.8")
    wait(browser, settled("#similar"))
    after = [e.get_attribute("data-id") for e in browser.find_elements(By.CSS_SELECTOR, "#similar .critic-w-item")]
    assert len(after) == 8 and after != before

    browser.find_element(By.CSS_SELECTOR, "input[name=tone][value=critique]").click()
    browser.find_element(By.ID, "draft-button").click()
    wait(browser, settled("#critique-output [data-critic-critique]"), timeout=90)
    output = browser.find_element(By.CSS_SELECTOR, "#critique-output [data-critic-critique]")
    assert output.get_attribute("data-tone") == "critique"
    if critique_status(api_server, browser.execute_script("return location.hash").split("/")[-1]) == 200:
        assert output.find_element(By.CSS_SELECTOR, ".critic-w-draft-mark").text.lower() == "draft"
    else:
        assert "unavailable" in output.find_element(By.CSS_SELECTOR, ".critic-w-message").text
    screenshot(browser, "demo-artwork-page")
    assert not csp_violations(browser)


def test_demo_shows_a_hostile_title_as_text(browser, api_server):
    browser.get(api_server.url(f"/#/artwork/{HOSTILE_ID}"))
    wait(browser, EC.text_to_be_present_in_element((By.ID, "art-title"), HOSTILE_TITLE))
    assert browser.find_element(By.ID, "art-title").text == HOSTILE_TITLE
    assert browser.find_element(By.ID, "art-creators").text == "<script>alert(2)</script>"
    assert browser.find_element(By.ID, "art-source").get_attribute("hidden") is not None
    wait(browser, count_at_least("#similar .critic-w-item", 1))
    assert not browser.find_elements(By.CSS_SELECTOR, 'img[src="x"]')
    try:
        wait(browser, EC.alert_is_present(), timeout=1)
        pytest.fail("a script from the record's title ran")
    except TimeoutException:
        pass
    screenshot(browser, "demo-hostile-title")


def test_demo_is_readable_at_phone_width(browser, api_server, browser_home):
    _, artwork_id = browser_home
    browser.set_window_size(390, 844)
    try:
        browser.get(api_server.url(f"/#/artwork/{artwork_id}"))
        wait(browser, count_at_least("#similar .critic-w-item", 8))
        width = browser.execute_script("return window.innerWidth")
        assert browser.execute_script("return document.documentElement.scrollWidth") <= width
        screenshot(browser, "demo-artwork-phone")
        browser.get(api_server.url("/#/"))
        wait(browser, count_at_least("#results .card", 24))
        assert browser.execute_script("return document.documentElement.scrollWidth") <= width
        screenshot(browser, "demo-collection-phone")
        browser.find_element(By.ID, "more").click()
        wait(browser, count_at_least("#results .card", 48))
    finally:
        browser.set_window_size(1280, 900)
