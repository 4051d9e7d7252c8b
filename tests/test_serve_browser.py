"""The search page in a real headless Chromium (Debian's ``chromium`` + ``chromium-driver``, selenium).

The page is driven as a person would: open a shared URL, upload a query file, press play. The
server is the session's ``omni-rag serve`` subprocess (``tests/conftest.py``). Without Chromium
these tests skip, saying how to install it; ``.ci/run`` installs it, so CI runs them.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote_plus

import httpx
import pytest

from tests.serve_support import API_KEY, COLLECTION, LONG_VIDEO, QUERIES, REPO, Server, start_server

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
#: Where a test run also writes the README's screenshot (``OMNI_RAG_SCREENSHOT_DIR=docs``).
SCREENSHOT_DIR_ENV = "OMNI_RAG_SCREENSHOT_DIR"
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--autoplay-policy=no-user-gesture-required",
    "--window-size=1280,1100",
)

T = TypeVar("T")

pytestmark = pytest.mark.skipif(
    not (CHROMIUM.exists() and CHROMEDRIVER.exists()),
    reason="needs Debian's Chromium for the browser tests: `apt-get install -y chromium chromium-driver` "
    "(as root; .ci/run does it)",
)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Headless Chromium through /usr/bin/chromedriver (never selenium-manager), fresh profile."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="omni-rag-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={profile}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def wait_for(condition: Callable[[], T], seconds: float = 120.0, what: str = "condition") -> T:
    deadline = time.monotonic() + seconds
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {seconds:g} s waiting for {what}")
        time.sleep(0.2)


def card_ids(browser: Any) -> list[str]:
    """The ids of the cards shown, read in one go (the page replaces cards as results arrive)."""
    script = "return [...document.querySelectorAll('article.card')].map(c => c.dataset.id)"
    return list(browser.execute_script(script))


def api_ids(server: Server, **body: Any) -> list[str]:
    hits = httpx.post(f"{server.url}/api/search", json=body, timeout=120).json()["hits"]
    return [h["id"] for h in hits]


def test_text_query_from_the_url_shows_hits(browser: Any, server: Server) -> None:
    text = "how to bake a loaf of bread"
    browser.get(f"{server.url}/?q={quote_plus(text)}&streams=audio,video&fusion=rrf&k=5")
    ids = wait_for(lambda: card_ids(browser), what="result cards")
    assert ids == api_ids(server, text=text, k=5, fusion="rrf", streams=["audio", "video"])
    assert browser.find_element("id", "q").get_attribute("value") == text
    assert browser.find_element("id", "fusion").get_attribute("value") == "rrf"
    boxes = browser.find_elements("css selector", "#streams input:checked")
    assert [b.get_attribute("value") for b in boxes] == ["audio", "video"]
    first = browser.find_element("css selector", "article.card")
    assert first.find_element("css selector", ".rank").text == "#1"
    assert first.find_elements("css selector", ".bars .bar")  # a score bar per stream
    assert "points" in browser.find_element("id", "status").text


def test_back_button_returns_to_the_previous_search(browser: Any, server: Server) -> None:
    browser.get(f"{server.url}/?q=volcano&k=3")
    first = wait_for(lambda: card_ids(browser), what="first results")
    box = browser.find_element("id", "q")
    box.clear()
    box.send_keys("ocean tides")
    browser.find_element("id", "go").click()
    wait_for(lambda: "q=ocean+tides" in browser.current_url, what="the URL to follow the search")
    wait_for(lambda: card_ids(browser) == api_ids(server, text="ocean tides", k=3), what="second results")
    browser.back()
    wait_for(lambda: card_ids(browser) == first, what="the first results after Back")
    assert browser.find_element("id", "q").get_attribute("value") == "volcano"


def test_uploading_an_audio_query_shows_hits(browser: Any, server: Server) -> None:
    question = QUERIES / "bread_question.wav"
    browser.get(f"{server.url}/?k=6")
    wait_for(lambda: "points" in browser.find_element("id", "status").text, what="the health check")
    browser.find_element("id", "file").send_keys(str(question))
    assert "bread_question.wav" in browser.find_element("id", "drop").text
    browser.find_element("id", "go").click()
    with question.open("rb") as handle:
        expected = httpx.post(
            f"{server.url}/api/search", files={"audio": (question.name, handle)}, data={"k": "6"}, timeout=120
        ).json()["hits"]
    ids = wait_for(lambda: card_ids(browser), what="results of the upload")
    assert ids == [h["id"] for h in expected]


def test_bad_upload_shows_the_reason(browser: Any, server: Server, tmp_path: Path) -> None:
    bad = tmp_path / "broken.wav"
    bad.write_bytes(b"not audio at all" * 64)
    browser.get(f"{server.url}/")
    wait_for(lambda: "points" in browser.find_element("id", "status").text, what="the health check")
    browser.find_element("id", "file").send_keys(str(bad))
    browser.find_element("id", "go").click()
    box = browser.find_element("id", "message")
    wait_for(lambda: "broken.wav" in box.text, what="the error message")
    assert "no audio to embed" in box.text and "error" in box.get_attribute("class")


def test_play_on_a_video_hit_starts_at_start_s(browser: Any, server: Server) -> None:
    browser.get(f"{server.url}/?q=a+talk&streams=video&k=20")
    wait_for(lambda: card_ids(browser), what="result cards")
    cards = browser.find_elements("css selector", "article.card.video")
    segment = next(
        c
        for c in cards
        if LONG_VIDEO in c.text
        and float(c.find_element("tag name", "video").get_attribute("data-start")) == 8.0
    )
    video = segment.find_element("tag name", "video")
    assert video.get_attribute("poster").endswith(segment.get_attribute("data-id").replace("#", "%23"))
    browser.execute_script("arguments[0].muted = true", video)
    segment.find_element("css selector", "button.play").click()
    wait_for(lambda: browser.execute_script("return arguments[0].currentTime > 0", video), what="playback")
    current = browser.execute_script("return arguments[0].currentTime", video)
    assert abs(current - 8.0) < 1.0, current
    error = browser.execute_script("return arguments[0].error && arguments[0].error.message", video)
    assert error is None
    wait_for(lambda: browser.execute_script("return arguments[0].paused", video), 30, "the stop at end_s")
    stopped = browser.execute_script("return arguments[0].currentTime", video)
    assert 11.0 <= stopped <= 12.3, stopped  # end_s is 12.0: stopped there, not run on


def test_page_asks_for_the_key_once(browser: Any, keyed_server: Server) -> None:
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(f"{keyed_server.url}/?q=volcano&k=4&streams=audio,video")
    prompt = WebDriverWait(browser, 60).until(expected_conditions.alert_is_present())
    assert "API key" in prompt.text
    prompt.send_keys(API_KEY)
    prompt.accept()
    wait_for(lambda: len(card_ids(browser)) == 4, what="results after the key")
    video = browser.find_element("css selector", "article.card.video video")
    browser.execute_script("arguments[0].muted = true; arguments[0].play()", video)  # cookie carries the key
    wait_for(lambda: browser.execute_script("return arguments[0].readyState >= 2", video), 60, "media data")
    browser.get(f"{keyed_server.url}/?q=bread&k=2")  # same tab: not asked again
    wait_for(lambda: len(card_ids(browser)) == 2, what="results without asking")
    assert not expected_conditions.alert_is_present()(browser)


def test_grouped_view_puts_each_file_on_one_row(browser: Any, server: Server) -> None:
    browser.get(f"{server.url}/?q={quote_plus('how to bake a loaf of bread')}&k=8&view=grouped")
    wait_for(lambda: card_ids(browser), what="result cards")
    rows = browser.find_elements("css selector", "section.group")
    names = [r.find_element("tag name", "h3").text for r in rows]
    assert len(names) == len(set(names)) and len(card_ids(browser)) == 8
    recording = next(r for r in rows if LONG_VIDEO in r.text)
    segments = recording.find_elements("css selector", ".timeline .seg")
    assert len(segments) == len(recording.find_elements("css selector", "article.card")) == 3


def test_results_page_screenshot(browser: Any, server: Server, tmp_path: Path) -> None:
    browser.get(f"{server.url}/?q={quote_plus('how to bake a loaf of bread')}&streams=audio,video,image&k=6")
    wait_for(lambda: len(card_ids(browser)) == 6, what="result cards")
    wait_for(
        lambda: browser.execute_script(
            "return [...document.images].every(i => i.complete && i.naturalWidth > 0)"
        ),
        what="images",
    )
    posters = browser.execute_script("return [...document.querySelectorAll('video')].map(v => v.poster)")
    assert posters and all("/poster/" in p for p in posters)
    for poster in posters:  # every poster frame loads (the page shows them before anything plays)
        assert httpx.get(poster).status_code == 200
    time.sleep(1.0)  # let the poster frames paint
    shot = tmp_path / "serve_results.png"
    assert browser.save_screenshot(str(shot))
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000
    target = os.environ.get(SCREENSHOT_DIR_ENV)
    if target:
        shutil.copy(shot, REPO / target / shot.name)


@pytest.fixture
def empty_server(embedder: Any, native_checkpoint: Path, tmp_path: Path) -> Iterator[Server]:
    """A server on a collection whose only point was deleted: it exists, and holds nothing."""
    from omni_rag.cli import open_store
    from omni_rag.retriever import OmniRetriever

    store = open_store(COLLECTION, path=tmp_path / "store")
    try:
        retriever = OmniRetriever(embedder, store)
        store.delete(retriever.add(["a note that will be deleted"]).added)
        assert store.count() == 0
    finally:
        store.close()
    running = start_server(tmp_path / "store", native_checkpoint)
    yield running
    running.stop()


def test_empty_collection_then_server_gone(browser: Any, empty_server: Server) -> None:
    browser.get(f"{empty_server.url}/")
    box = browser.find_element("id", "message")
    wait_for(lambda: "is empty" in box.text, what="the empty-collection message")
    assert "omni-rag index" in box.text
    empty_server.stop()
    browser.find_element("id", "q").send_keys("anything")
    browser.find_element("id", "go").click()
    wait_for(lambda: "unreachable" in box.text, what="the unreachable-server message")
    assert "error" in box.get_attribute("class")
