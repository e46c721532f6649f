"""The web page in headless Chromium, against the local stack `make serve` runs.

Needs Debian's chromium (/usr/bin/chromium), which .ci/run installs; elsewhere the test
says what to install instead of failing on a machine without a browser, unless
REQUIRE_BROWSER=1 (CI) makes a missing browser a failure.
"""

from __future__ import annotations

import json
import os
import threading
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests import records
from tests.conftest import ROOT

CHROMIUM = Path("/usr/bin/chromium")
TOKEN = "browser-test-token"
OUTPUT = ROOT / "test-output"

if not CHROMIUM.exists() and os.environ.get("REQUIRE_BROWSER") != "1":
    pytest.skip(
        "Debian's chromium is not installed (apt-get install chromium); CI installs it", allow_module_level=True
    )


@pytest.fixture
def stack(monkeypatch, emulator):
    from local.stack import Local

    monkeypatch.setenv("API_TOKEN", TOKEN)
    emulator.reset()  # the stack uses the session's emulator: nothing an earlier test left may show in the gallery
    with Local(schedules=False) as local:
        from chalice.cli.factory import CLIFactory
        from chalice.local import create_local_server

        from app import app

        config = CLIFactory(project_dir=str(ROOT)).create_config_obj(chalice_stage_name="dev")
        plain = app.__class__  # create_local_server makes the app a local one: undone after, for the next
        server = create_local_server(app, config, "127.0.0.1", 0)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        local.url = f"http://127.0.0.1:{server.server.server_address[1]}/"
        yield local
        server.shutdown()
        app.__class__ = plain


def call(url: str, method: str = "GET", body: dict | None = None) -> dict:
    request = urllib.request.Request(
        url,
        method=method,
        data=json.dumps(body).encode() if body else None,
        headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.load(response)


def launch(playwright):
    return playwright.chromium.launch(
        executable_path=str(CHROMIUM),
        args=[
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--disable-quic",
        ],
    )


def refused(status: int, problems: list[str]) -> list[str]:
    """The problems left when the page's own refusals are put aside: Chromium logs an answer of 4xx the
    page asked for and showed (a 409's reason, a 400's validation error) as a failed load."""
    return [p for p in problems if f"status of {status}" not in p]


def test_the_gallery_shows_the_gif_thumbnails_and_timeline_and_rebuilds(stack, monkeypatch):
    from playwright.sync_api import expect, sync_playwright

    from chalicelib.mediator import store
    from local.stack import SENDER, wait_for

    call(
        stack.url + "animations/radar",
        "PUT",
        {
            "layers": ["flat-dk", "radar"],
            "width": 480,
            "height": 360,
            "center": "tulsa,ok",
            "zoom": 6,
            "frames": 3,
            "thumbnails": [{"width": 160, "height": 120}],
            "email": {"to": ["desk@example.com"], "from": SENDER},
        },
    )
    # new: its window of three frames at once; the count rule makes a GIF of them, and emails it
    assert wait_for(lambda: [g for g in store.gifs("radar") if g.done and g.email_status == "sent"], timeout=60)
    state = store.get_animation("radar", consistent=True)
    newest = state.last_requested  # the window's newest frame: the first GIF's
    start = newest - 2 * 600  # its oldest
    stack.runtime.fire("fetch_due_frames", records.due(state.animation, newest + 600))  # a fourth
    assert wait_for(lambda: len([f for f in store.frames("radar") if f.thumbnails]) == 4, timeout=30)
    # Two more, whose windows are not asked for yet (their start held back: cards with no frame): one to
    # edit, disable and enable, one to delete
    from chalicelib.mediator import service

    with monkeypatch.context() as held:
        held.setattr(service, "start", lambda image_id: None)
        for name in ("fresh", "doomed"):
            call(
                stack.url + f"animations/{name}",
                "PUT",
                {"layers": ["radar"], "width": 320, "height": 240, "center": "tulsa,ok", "zoom": 5, "frames": 12},
            )

    OUTPUT.mkdir(exist_ok=True)
    with sync_playwright() as playwright:
        browser = launch(playwright)
        page = browser.new_page(viewport={"width": 1100, "height": 900})
        problems, asked = [], []  # console errors (CSP violations among them) and page errors; what the page asked for
        page.on(
            "console", lambda message: problems.append(f"console: {message.text}") if message.type == "error" else None
        )
        page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
        page.on("request", lambda request: asked.append(request.url))
        radar = page.locator("section.animation[data-image-id=radar]")
        fresh = page.locator("section.animation[data-image-id=fresh]")

        # A stranger: the gallery, each card's way to its next GIF, and no request that needs the token
        response = page.goto(stack.url)
        policy = response.headers["content-security-policy"]
        assert "default-src 'none'" in policy and "frame-ancestors 'none'" in policy and "unsafe-inline" not in policy
        assert response.headers["x-frame-options"] == "DENY"
        gif = radar.locator("img.latest-gif")
        expect(gif).to_be_visible(timeout=15_000)
        page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=gif.element_handle(), timeout=15_000)
        expect(radar.locator(".progress")).to_contain_text("1 of 3 new frames · next frame")
        expect(radar.locator(".progress")).to_contain_text("next GIF about")
        expect(fresh.locator(".placeholder")).to_contain_text("No GIF yet: 0 of 12 frames · first GIF about")
        expect(fresh.locator(".progress")).to_contain_text("0 of 12 frames · next frame")
        expect(page.locator("img.thumbnail")).to_have_count(0)  # a card's details load when it is opened
        radar.get_by_role("button", name="Details", exact=True).click()
        expect(radar.locator("img.thumbnail")).to_have_count(4)
        page.wait_for_function("() => [...document.querySelectorAll('img.thumbnail')].every(i => i.naturalWidth > 0)")
        expect(radar.locator("ol.timeline")).to_contain_text("Enter the API token")
        expect(radar.locator("table.history tr.gif-row")).to_have_count(1)
        expect(radar.locator("table.history")).to_contain_text("sent")  # the first GIF's email
        expect(page.locator("#dead-letters")).to_contain_text("Enter the API token")
        assert page.locator("li.event").count() == 0
        expect(page.locator("#status-panel")).to_contain_text("Queues: mediator")  # GET /status, public
        expect(page.locator("#status-panel")).to_contain_text("Stale animations:")
        expect(radar.locator(".cost")).to_contain_text("Cost in the last 24 h $")  # an open card's cost, public
        expect(fresh.locator(".cost")).to_be_hidden()  # a closed card asks for none
        # A change without the token: the page asks for it, where the button is and at the token's field
        fresh.get_by_role("button", name="Fetch now").click()
        expect(fresh.locator(".said")).to_contain_text("Fetch now needs the API token")
        expect(page.locator("#notice")).to_contain_text("enter it in the field at the top right")
        expect(page.locator("#token")).to_have_class("wanted")
        page.screenshot(path=str(OUTPUT / "gallery-anonymous.png"), full_page=True)
        assert not [url for url in asked if "/runs/" in url or url.endswith("/failures") or "/fetch" in url], asked
        assert problems == [], problems

        # A wrong token: the gateway denies it (403 {"Message"}), and the page says the token is wrong
        page.fill("#token", "not-the-token")
        page.dispatch_event("#token", "change")
        fresh.get_by_role("button", name="Fetch now").click()
        expect(fresh.locator(".said")).to_contain_text("Fetch now refused: the API token is wrong")
        expect(page.locator("#dead-letters")).to_contain_text("Could not load them")
        page.screenshot(path=str(OUTPUT / "gallery-wrong-token.png"))
        page.fill("#token", TOKEN)
        page.dispatch_event("#token", "change")
        expect(fresh.locator(".said")).to_have_text("")  # what the token refused is answered
        expect(page.locator("#dead-letters")).to_have_text(
            "None."
        )  # drawn with the right token: the wrong one's asks are over
        assert refused(403, problems) == [], problems  # the page's own asks with the wrong token, denied and shown
        problems.clear()
        expect(page.locator("#notice")).to_have_text("")

        expect(gif).to_be_visible(timeout=15_000)
        page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=gif.element_handle(), timeout=15_000)
        first = gif.get_attribute("data-valid-time")
        assert first == str(newest)
        expect(radar.locator("img.thumbnail")).to_have_count(4)
        page.wait_for_function("() => [...document.querySelectorAll('img.thumbnail')].every(i => i.naturalWidth > 0)")
        expect(radar.locator("li.event").first).to_be_visible()
        assert page.locator("li.event").count() >= 6  # fetch, frame, thumbnail, GIF... of the GIF's run
        page.screenshot(path=str(OUTPUT / "gallery.png"), full_page=True)

        # Rebuild now: made, then refused with the reason, on the card
        radar.get_by_role("button", name="Rebuild now").click()
        expect(radar.locator(".said")).to_contain_text("Rebuild now: a GIF of 3 frames asked for", timeout=10_000)
        expect(gif).to_have_attribute("data-valid-time", str(newest + 600), timeout=30_000)
        page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=gif.element_handle(), timeout=15_000)
        expect(radar.locator("table.history tr.gif-row")).to_have_count(2, timeout=15_000)
        page.screenshot(path=str(OUTPUT / "gallery-rebuilt.png"), full_page=True)
        assert problems == [], problems  # with the token: timelines and dead letters load, and nothing fails
        radar.get_by_role("button", name="Rebuild now").click()  # the same window again: refused, and said why
        expect(radar.locator(".said")).to_contain_text(
            "Rebuild now refused: a GIF of the newest 3 frames", timeout=10_000
        )
        expect(radar.locator(".said")).to_contain_text("exists already: no newer frame since")
        fresh.get_by_role("button", name="Rebuild now").click()
        expect(fresh.locator(".said")).to_contain_text("Rebuild now refused: only 0 of 12 frames so far")
        page.screenshot(path=str(OUTPUT / "gallery-refused.png"), full_page=True)

        # Fetch now: asked for, and its frame counts toward the first GIF: "1 frame"
        fresh.get_by_role("button", name="Fetch now").click()
        expect(fresh.locator(".said")).to_contain_text("Fetch now: a frame for")
        expect(fresh.locator(".progress")).to_contain_text("1 of 12 frames", timeout=20_000)
        expect(fresh.locator(".meta.config")).to_contain_text("1 frame, newest")

        # Edit: the API's validation error is shown in the form, then the change is saved and shown
        fresh.get_by_role("button", name="Details", exact=True).click()
        fresh.get_by_role("button", name="Edit", exact=True).click()
        form = fresh.locator("form.edit")
        expect(form.locator("input[name=frames]")).to_have_value("12")
        form.locator("input[name=frames]").fill("6")
        form.locator("input[name=every]").fill("8")
        form.get_by_role("button", name="Save").click()
        expect(form.locator(".form-error")).to_contain_text("Not saved: every: must not exceed frames (6): it is 8")
        page.screenshot(path=str(OUTPUT / "gallery-edit-refused.png"), full_page=True)
        form.locator("input[name=every]").fill("2")
        form.locator("input[name=thumbnails]").fill("120x90")
        form.get_by_role("button", name="Save").click()
        expect(form).to_have_count(0)
        expect(fresh.locator(".said")).to_contain_text("Edit: saved.")
        expect(fresh.locator(".meta.config")).to_contain_text("6 a GIF")
        expect(fresh.locator(".progress")).to_contain_text("1 of 6 frames")
        saved = call(stack.url + "animations/fresh")
        assert (saved["frames"], saved["every"], saved["thumbnails"]) == (
            6,
            2,
            [{"width": 120, "height": 90, "mode": "cover"}],
        )
        assert saved["layers"] == ["radar"] and saved["zoom"] == 5  # the rest of the configuration kept

        # Disable and enable
        fresh.get_by_role("button", name="Disable", exact=True).click()
        expect(fresh.locator(".badge.disabled")).to_have_text("disabled")
        expect(fresh.locator(".progress")).to_contain_text("disabled: no frames are fetched")
        assert call(stack.url + "animations/fresh")["enabled"] is False
        fresh.get_by_role("button", name="Fetch now").click()
        expect(fresh.locator(".said")).to_contain_text("Fetch now refused: animation 'fresh' is disabled")
        page.screenshot(path=str(OUTPUT / "gallery-disabled.png"), full_page=True)
        fresh.get_by_role("button", name="Enable", exact=True).click()
        expect(fresh.locator(".said")).to_contain_text("Enable: frames will be fetched again")
        expect(fresh.locator(".badge.disabled")).to_have_count(0)
        assert call(stack.url + "animations/fresh")["enabled"] is True
        assert call(stack.url + "animations/fresh")["frames"] == 6  # the edit kept through both

        # Delete, confirmed
        doomed = page.locator("section.animation[data-image-id=doomed]")
        doomed.get_by_role("button", name="Details", exact=True).click()
        doomed.get_by_role("button", name="Delete", exact=True).click()
        expect(doomed.locator(".confirm")).to_contain_text("Delete doomed?")
        page.screenshot(path=str(OUTPUT / "gallery-delete.png"), full_page=True)
        doomed.get_by_role("button", name="Delete doomed").click()
        expect(doomed).to_have_count(0)
        expect(page.locator("#notice")).to_contain_text("Delete doomed: deleted (its images kept)")
        with pytest.raises(urllib.error.HTTPError) as gone:
            call(stack.url + "animations/doomed")
        assert gone.value.code == 404

        # Create, refused: the API's reason at the form, beside its button and on the field it names, in
        # sight (not at the top of the page, where the banner is for the page's own errors)
        create = page.locator("form#create")
        create.locator("input[name=imageId]").fill("created")
        create.locator("input[name=thumbnail]").fill("0x5")
        create.get_by_role("button", name="Create").click()
        said = page.locator("#create-said")
        expect(said).to_contain_text("Not saved: thumbnails.0.width: must be at least 1")
        expect(said).to_be_in_viewport()
        expect(create.locator("input[name=thumbnail]")).to_have_attribute("aria-invalid", "true")
        expect(page.locator("#notice")).not_to_contain_text("Not saved")
        page.screenshot(path=str(OUTPUT / "create-refused.png"))  # what the reader sees: the viewport
        create.locator("input[name=thumbnail]").fill("160x120")
        expect(create.locator("[aria-invalid]")).to_have_count(0)  # mended: no longer marked
        create.get_by_role("button", name="Create").click()
        expect(said).to_contain_text("Animation created saved.")
        expect(page.locator("section.animation[data-image-id=created]")).to_have_count(1)
        expect(page.locator("section.animation[data-image-id=created] .meta.config")).to_contain_text("0 frames")
        assert call(stack.url + "animations/created")["thumbnails"] == [{"width": 160, "height": 120, "mode": "cover"}]

        # What failed for good is shown, and redriven from the page
        from chalicelib.mediator import service
        from chalicelib.messages import DidFail

        request = {
            "type": "please-fetch-amp-image",
            "imageId": "radar",
            "layers": ["flat-dk", "radar"],
            "width": 480,
            "height": 360,
            "center": "tulsa,ok",
            "zoom": 6,
            "validTime": start - 600,
        }
        service.handle(
            DidFail(
                type="did-fail-fetch-amp-image",
                error="RetriesExhausted after 3 attempts: the source did not answer <img src=x onerror=alert(1)>",
                request=request,
            ),
            start,
        )
        store.record_dead_letter("m-dead", '{"type": "did-create-gif", "imageId": "radar"}', start, "KeyError: x")
        failure = radar.locator("pre.failure")
        expect(failure).to_contain_text("the source did not answer <img src=x onerror=alert(1)>", timeout=15_000)
        expect(radar.locator("pre.failure img")).to_have_count(0)  # data is shown as text, never as markup
        expect(page.locator("#dead-letters pre.dead-letter")).to_contain_text("KeyError: x", timeout=15_000)
        page.screenshot(path=str(OUTPUT / "gallery-failures.png"), full_page=True)
        radar.get_by_role("button", name="Redrive failures").click()
        expect(radar.locator(".said")).to_contain_text("Redrive failures: 1 request sent back to its worker")
        expect(failure).to_have_count(0, timeout=15_000)
        page.get_by_role("button", name="Redrive dead letters").click()
        expect(page.locator("#dead-letters-said")).to_contain_text(
            "Redrive dead letters: 1 dead letter sent back to the mediator's queue."
        )
        expect(page.locator("#dead-letters")).to_have_text("None.", timeout=15_000)
        assert wait_for(lambda: store.frame("radar", start - 600), timeout=30)  # the redriven fetch came
        page.screenshot(path=str(OUTPUT / "gallery-redriven.png"), full_page=True)
        # The page's own refusals (409s, a 400, the 404 of the deleted card's last look) are shown; nothing else failed
        assert refused(404, refused(400, refused(409, problems))) == [], problems
        browser.close()


def test_a_thousand_animations_show_their_first_cards_within_a_second(stack):
    """The page at scale: a request a page of cards (the summary route), GIFs loaded lazily, more on
    asking, and a search by the start of an id."""
    from concurrent.futures import ThreadPoolExecutor

    from playwright.sync_api import expect, sync_playwright

    from chalicelib.mediator import store
    from chalicelib.mediator.animation import Animation

    stack.runtime.stop()  # no events here: its queue polling would only share the embedded AWS with the page
    base = Animation(image_id="a0000", layers=["radar"], width=320, height=240, center="tulsa,ok", zoom=5)
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda i: store.put_animation(base.replace(image_id=f"a{i:04d}")), range(1000)))

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_page(viewport={"width": 1100, "height": 900})
        asked: list[str] = []
        page.on("request", lambda request: asked.append(request.url))
        page.goto(stack.url + "?warm")  # the first load of a cold stack (imports) is not the page's to pay
        expect(page.locator("section.animation").first).to_be_visible(timeout=15_000)
        loads = []
        for _ in range(3):  # the median of three loads: the machine's other work is not the page's
            asked.clear()
            page.goto(stack.url)
            expect(page.locator("section.animation").first).to_be_visible(timeout=5_000)
            # When the page put the cards in (its own mark), in ms since the navigation began.
            loads.append(page.evaluate("performance.getEntriesByName('first-cards')[0].startTime"))
            expect(page.locator("section.animation")).to_have_count(24)
            summaries = [url for url in asked if "/summary" in url]
            assert len(summaries) == 1 and not [url for url in asked if "/animations/" in url], asked
        shown_after = sorted(loads)[1]
        timing = page.evaluate(
            "JSON.stringify(performance.getEntriesByType('resource').concat(performance.getEntriesByType('navigation'))"
            ".map(e => [e.name.split('/').pop(), Math.round(e.startTime), Math.round(e.responseEnd)]))"
        )
        print(f"first cards at {[round(t) for t in loads]} ms; the last load's requests (name, start, end): {timing}")
        assert shown_after < 1000, f"the first card showed {shown_after:.0f} ms after the navigation began: {timing}"
        OUTPUT.mkdir(exist_ok=True)
        page.screenshot(path=str(OUTPUT / "gallery-1000.png"))

        page.get_by_role("button", name="Show more").click()
        expect(page.locator("section.animation")).to_have_count(48)
        page.fill("#search", "a09")
        expect(page.locator("section.animation")).to_have_count(24)
        ids = page.locator("section.animation").evaluate_all("cards => cards.map(c => c.dataset.imageId)")
        assert all(i.startswith("a09") for i in ids), ids
        page.fill("#search", "a0999")
        expect(page.locator("section.animation")).to_have_count(1)
        expect(page.locator("#more")).to_be_hidden()
        browser.close()
    print(f"first card after {shown_after:.0f} ms")
