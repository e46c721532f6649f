"""The web page in headless Chromium, against the local stack `make serve` runs.

Needs Debian's chromium (/usr/bin/chromium), which .ci/run installs; elsewhere the test
says what to install instead of failing on a machine without a browser, unless
REQUIRE_BROWSER=1 (CI) makes a missing browser a failure.
"""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request

import pytest

from local.mapsource import SHUTDOWN_POLL
from tests import records
from tests.conftest import CHROMIUM, ROOT, needs_chromium

TOKEN = "browser-test-token"
OUTPUT = ROOT / "test-output"

pytestmark = [pytest.mark.heavy, needs_chromium]  # a browser and the whole local stack, each test


@pytest.fixture
def stack(monkeypatch, emulator):
    from playwright.sync_api import expect

    from local.stack import Local

    # A step's answer (a card's details: six API calls) may wait its turn: the tests' processes
    # outnumber the cores. A longer wait costs nothing where the answer comes at once.
    expect.set_options(timeout=15_000)

    monkeypatch.setenv("API_TOKEN", TOKEN)
    emulator.reset()  # the stack uses the session's emulator: nothing an earlier test left may show in the gallery
    with Local(schedules=False) as local:
        from chalice.cli.factory import CLIFactory
        from chalice.local import create_local_server

        from app import app

        config = CLIFactory(project_dir=str(ROOT)).create_config_obj(chalice_stage_name="dev")
        plain = app.__class__  # create_local_server makes the app a local one: undone after, for the next
        server = create_local_server(app, config, "127.0.0.1", 0)
        # Chalice's own serve_forever, without its banner, looking for shutdown() every SHUTDOWN_POLL
        thread = threading.Thread(target=server.server.serve_forever, args=(SHUTDOWN_POLL,), daemon=True)
        thread.start()
        local.url = f"http://127.0.0.1:{server.server.server_address[1]}/"
        yield local
        if thread.is_alive():  # a loop that never ran would never say it stopped
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
        # full the moment it is created: its window's 12 frames asked for at once, not one per tick
        expect(page.locator("section.animation[data-image-id=created] .meta.config")).to_contain_text(
            "12 frames", timeout=30_000
        )
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


def kb(n: int) -> str:
    """A size as the page says it: "412 KB" (rounded, with a thousands separator), "1.9 MB"."""
    return f"{int(n / 1024 + 0.5):,} KB" if n < 1024 * 1024 else f"{n / 1024 / 1024:.1f} MB"


def collect(page) -> list[str]:
    """Console errors (CSP violations among them) and page errors, as they come."""
    problems: list[str] = []
    page.on("console", lambda message: problems.append(f"console: {message.text}") if message.type == "error" else None)
    page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    return problems


# What the test puts on a <video> before it watches it: each frame the browser presents (its media time,
# when), and every event that would say it stopped, restarted or failed.
WATCH = """video => {
  video.watched = { frames: [], events: [], updates: [] };
  const frame = (now, meta) => { video.watched.frames.push([meta.mediaTime, now]); video.requestVideoFrameCallback(frame); };
  video.requestVideoFrameCallback(frame);
  for (const type of ["pause", "emptied", "error", "abort", "seeking"]) {
    video.addEventListener(type, () => video.watched.events.push([type, video.currentTime]));
  }
  video.addEventListener("timeupdate", () => video.watched.updates.push(video.currentTime));
}"""

# Played through: the last frame presented, then the first again (the loop came round), twice.
LOOPED = """([video, last]) => {
  const frames = video.watched.frames, wraps = [];
  for (let i = 1; i < frames.length; i++) {
    if (Math.abs(frames[i - 1][0] - last) < 0.001 && frames[i][0] < 0.001) wraps.push(i);
  }
  return wraps.length >= 2;
}"""


def test_the_page_plays_an_animations_mp4_to_its_last_frame_and_falls_back(stack):
    from playwright.sync_api import expect, sync_playwright

    from chalicelib.mediator import store
    from local.stack import wait_for

    frames, delay, last_delay = 4, 250, 1000
    call(
        stack.url + "animations/video",
        "PUT",
        {
            # a temperature ramp: H.264's ground, its MP4 a third of the WebP's bytes at any time of day
            # (a radar loop this small is a coin toss between the two, by the hour its frames are of)
            "layers": ["flat-dk", "temp-gradient"],
            "width": 320,
            "height": 240,
            "center": "tulsa,ok",
            "zoom": 6,
            "frames": frames,
            "gifDelay": delay,
            "gifLastDelay": last_delay,
            "formats": ["gif", "webp", "mp4"],
        },
    )
    # new: its window of four frames at once, and a GIF of them with its WebP and MP4
    assert wait_for(lambda: [g for g in store.gifs("video") if g.done and len(g.outputs) == 3], timeout=60)
    [gif] = call(stack.url + "animations/video/gifs")["gifs"]
    assert gif["frames"] == frames
    made = {f["format"]: f for f in gif["formats"]}
    assert set(made) == {"gif", "webp", "mp4"} and all(f["bytes"] for f in made.values())
    smallest = min(made.values(), key=lambda f: f["bytes"])
    assert smallest["format"] == "mp4", made  # so the page's choice is the video
    seconds = ((frames - 1) * delay + last_delay) / 1000  # each frame its delay, the last its lastDelay

    OUTPUT.mkdir(exist_ok=True)
    with sync_playwright() as playwright:
        browser = launch(playwright)
        page = browser.new_page(viewport={"width": 1100, "height": 900})
        problems = collect(page)
        card = page.locator("section.animation[data-image-id=video]")
        page.goto(stack.url)
        # Chromium plays H.264: the MP4, as a silent looping video that needs no click
        video = card.locator("video.latest-gif")
        expect(video).to_be_visible(timeout=15_000)
        expect(video).to_have_attribute("data-format", "mp4")
        expect(video).to_have_attribute("data-valid-time", str(gif["validTime"]))
        assert page.evaluate("() => document.createElement('video').canPlayType('video/mp4; codecs=\"avc1.640028\"')")
        assert video.evaluate("v => [v.autoplay, v.loop, v.muted, v.playsInline, v.controls]") == [
            True,
            True,
            True,
            True,
            False,
        ]
        expect(card.locator(".gif .shown")).to_contain_text(f"MP4 · {kb(made['mp4']['bytes'])} · the GIF")
        page.wait_for_function("v => v.readyState >= 2 && !v.paused", arg=video.element_handle(), timeout=15_000)
        handle = video.element_handle()
        handle.evaluate(WATCH)
        # Played to its last frame and round again, twice, through a refresh of the page (every 5 s): the
        # same element, never paused, reloaded or sought but by its loop
        page.wait_for_function(LOOPED, arg=[handle, (frames - 1) * delay / 1000], timeout=20_000)
        page.wait_for_timeout(5_500)
        watched = handle.evaluate("v => v.watched")
        duration = handle.evaluate("v => v.duration")
        assert duration == pytest.approx(seconds, abs=0.001), (duration, seconds)
        assert video.evaluate("(v, h) => v === h", handle)  # not replaced by a refresh
        assert {e[0] for e in watched["events"]} <= {"seeking"}, watched["events"]  # only the loop's seeks
        assert max(watched["updates"]) > (frames - 1) * delay / 1000, watched["updates"]  # into the last frame's time
        times = [round(t, 3) for t, _ in watched["frames"]]
        assert set(times) == {round(i * delay / 1000, 3) for i in range(frames)}, times  # every frame shown
        held = [  # how long the last frame was shown before the loop came round: its lastDelay
            next_at - shown_at
            for (before, shown_at), (after, next_at) in zip(watched["frames"], watched["frames"][1:])
            if round(before, 3) == round((frames - 1) * delay / 1000, 3) and after == 0
        ]
        print(f"the last frame shown for {[round(ms) for ms in held]} ms; the video {duration} s long")
        assert len(held) >= 2 and all(0.7 * last_delay <= ms <= 2.5 * last_delay for ms in held), watched["frames"]
        page.screenshot(path=str(OUTPUT / "formats-video.png"))

        # The GIF history: each GIF's formats, with their bytes and links
        card.get_by_role("button", name="Details", exact=True).click()
        row = card.locator("table.history tr.gif-row")
        expect(row).to_have_count(1)
        for format, name in (("gif", "GIF"), ("webp", "WebP"), ("mp4", "MP4")):
            link = row.locator("td.formats a", has_text=name)
            expect(link).to_have_attribute("href", made[format]["url"])
            expect(link).to_have_text(f"{name} {kb(made[format]['bytes'])}")
        expect(card.locator(".configuration")).to_contain_text("made as GIF, WebP, MP4")
        page.screenshot(path=str(OUTPUT / "formats-history.png"), full_page=True)
        assert problems == [], problems
        page.close()

        # A browser that plays no MP4 shows the animated WebP
        page = browser.new_page(viewport={"width": 1100, "height": 900})
        problems = collect(page)
        page.add_init_script("HTMLMediaElement.prototype.canPlayType = () => '';")
        page.goto(stack.url)
        card = page.locator("section.animation[data-image-id=video]")
        webp = card.locator("img.latest-gif")
        expect(webp).to_have_attribute("data-format", "webp", timeout=15_000)
        page.wait_for_function("img => img.complete && img.naturalWidth === 320", arg=webp.element_handle())
        expect(card.locator("video")).to_have_count(0)
        expect(card.locator(".gif .shown")).to_contain_text("WebP")
        assert problems == [], problems
        page.close()

        # An MP4 that does not load: the GIF in its place
        page = browser.new_page(viewport={"width": 1100, "height": 900})
        problems = collect(page)
        page.route("**/image?format=mp4", lambda route: route.abort())
        page.goto(stack.url)
        card = page.locator("section.animation[data-image-id=video]")
        fallen = card.locator("img.latest-gif")
        expect(fallen).to_have_attribute("data-format", "gif", timeout=15_000)
        page.wait_for_function("img => img.complete && img.naturalWidth === 320", arg=fallen.element_handle())
        expect(card.locator("video")).to_have_count(0)
        expect(card.locator(".gif .shown")).to_have_text(f"GIF · {kb(made['gif']['bytes'])}")
        page.wait_for_timeout(5_500)  # a refresh later, still the GIF: the MP4 is not tried again
        expect(fallen).to_have_attribute("data-format", "gif")
        assert [p for p in problems if "ERR_FAILED" not in p] == [], problems  # the aborted load, and nothing else
        browser.close()


def snap(locator, name: str) -> None:
    """An element's screenshot, taken again if the page's refresh moved it meanwhile (a card came or grew
    above it) or drew it anew (a card is a new element at each refresh)."""
    from playwright.sync_api import Error

    for _ in range(5):
        try:
            before = locator.bounding_box()
            locator.screenshot(path=str(OUTPUT / name))
            if locator.bounding_box() == before:
                return
        except Error as error:
            if "not attached" not in str(error):
                raise
    raise AssertionError(f"{name}: the element kept moving")


OVERLAPS = """selector => {  // the pairs of visible boxes that overlap, by their text
  const boxes = [...document.querySelectorAll(selector)].filter(n => n.offsetParent !== null)
    .map(n => [n.textContent.trim().slice(0, 30), n.getBoundingClientRect()]);
  const out = [];
  for (let i = 0; i < boxes.length; i++) for (let j = i + 1; j < boxes.length; j++) {
    const [a, r] = boxes[i], [b, s] = boxes[j];
    if (r.left < s.right - 1 && s.left < r.right - 1 && r.top < s.bottom - 1 && s.top < r.bottom - 1) out.push([a, b]);
  }
  return out;
}"""


def test_the_page_shows_a_forecasts_run_and_creates_each_kind(stack, monkeypatch):
    from urllib.parse import parse_qs

    from playwright.sync_api import expect, sync_playwright

    from chalicelib.mediator import store
    from local import mapsource
    from local.stack import wait_for

    # A forecast whose run lacks two frames: the demo source has none 30 and 45 minutes past the run (for
    # this forecast's size: the forms' animations are another's)
    answer = mapsource._Handler.do_GET

    def gappy(self):
        path, _, query = self.path.partition("?")
        match, run = mapsource.PATH.match(path), parse_qs(query).get("run")
        if match and run and match["width"] == "480" and match["time"] != "current":
            if mapsource._epoch(match["time"]) - mapsource._epoch(run[-1]) in (1800, 2700):
                return self._answer(404, b'{"error": "no such frame"}')
        return answer(self)

    monkeypatch.setattr(mapsource._Handler, "do_GET", gappy)
    call(
        stack.url + "animations/outlook",
        "PUT",
        {
            "kind": "forecast",
            "source": "demo-forecast",
            "layers": ["flat-dk", "radar"],
            "width": 480,
            "height": 360,
            "center": "tulsa,ok",
            "zoom": 6,
            "interval": 900,
            "frames": 6,
            "thumbnails": [{"width": 120, "height": 90}],
            "formats": ["gif", "webp", "mp4"],
        },
    )
    # its newest run's six frames asked for at once; four come, two fail, and the run's GIF has four
    assert wait_for(lambda: [g for g in store.gifs("outlook") if g.done], timeout=60)
    [gif] = call(stack.url + "animations/outlook/gifs")["gifs"]
    run = gif["runTime"]
    assert (gif["frames"], len(gif["gaps"])) == (4, 2)
    smallest = gif["formats"][0]["format"]

    OUTPUT.mkdir(exist_ok=True)
    with sync_playwright() as playwright:
        browser = launch(playwright)
        page = browser.new_page(viewport={"width": 1100, "height": 900})
        problems = collect(page)
        sent: list = []
        page.on("request", lambda request: sent.append(request) if request.method == "PUT" else None)
        page.goto(stack.url)
        page.fill("#token", TOKEN)
        page.dispatch_event("#token", "change")
        shown = page.evaluate(
            "times => times.map(t => clock(new Date(t * 1000).toISOString()))",
            [run, *range(run + 1800, run + 2701, 900)],
        )
        at_run, gap1, gap2 = shown

        # The forecast's card: its kind and source, its newest run's progress, its GIF's run and gaps
        outlook = page.locator("section.animation[data-image-id=outlook]")
        expect(outlook.locator(".progress")).to_contain_text(
            f"run {at_run} · 4 of 6 frames · 2 failed · its GIF made", timeout=15_000
        )
        expect(outlook.locator(".progress")).to_contain_text("next run")
        expect(outlook.locator(".meta.config")).to_contain_text(
            "forecast · demo-forecast · flat-dk + radar · tulsa,ok · 6 frames of a run, 15 min apart"
        )
        expect(outlook.locator(".run-gif")).to_have_text(
            f"GIF of the run of {at_run} · 2 frames did not come: {gap1}, {gap2}"
        )
        expect(outlook.locator(".latest-gif")).to_have_attribute("data-format", smallest)
        expect(outlook).to_contain_text(f"Run forecast-outlook-{run}")
        expect(outlook.get_by_role("button", name="Fetch now")).to_have_count(
            0
        )  # a forecast's frames come from its runs
        outlook.get_by_role("button", name="Details", exact=True).click()
        expect(outlook.locator(".configuration")).to_contain_text(
            "Forecast: 6 frames of each run of demo-forecast, 15 min apart"
        )
        row = outlook.locator("table.history tr.gif-row")
        expect(row).to_contain_text(f"run {at_run}")
        expect(row).to_contain_text(f"4 (2 frames did not come: {gap1}, {gap2})")
        expect(row.locator("td.formats a")).to_have_count(3)
        expect(outlook.locator("pre.failure")).to_have_count(2)  # the two frames' fetches, with their reasons
        expect(outlook.locator("pre.failure").first).to_contain_text("404")
        expect(outlook.locator("li.event").first).to_be_visible()  # the run's timeline
        expect(outlook.locator("img.thumbnail")).to_have_count(4)
        page.wait_for_function("() => [...document.querySelectorAll('img.thumbnail')].every(i => i.naturalWidth > 0)")
        snap(outlook, "forecast-card.png")
        # A forecast's progress in its other states, as the page words the API's (rule "run")
        waiting = {"run": None, "have": 0, "need": 6, "failed": 0, "deadline": None, "gifDue": False}
        under_way = {
            **waiting,
            "run": "2026-01-02T03:00:00Z",
            "have": 3,
            "failed": 1,
            "deadline": "2026-01-02T04:05:00Z",
        }
        card = {"kind": "forecast", "source": "demo-forecast", "enabled": True, "status": "waiting", "gif": None}
        lines = page.evaluate(
            "cards => cards.map(c => progressLine(c).split(' · next run ')[0])",
            [
                {**card, "progress": {"rule": "run", **waiting}},
                {**card, "progress": {"rule": "run", **under_way}},
                {
                    **card,
                    "progress": {"rule": "run", **under_way, "deadline": None, "gifDue": True},
                    "status": "making",
                },
                {**card, "progress": {"rule": "run", **under_way}, "enabled": False},
            ],
        )
        three, four = page.evaluate("ts => ts.map(clock)", ["2026-01-02T03:00:00Z", "2026-01-02T04:05:00Z"])
        assert lines == [
            "no run of demo-forecast yet",
            f"run {three} · 3 of 6 frames · 1 failed · GIF by {four}",
            f"run {three} · 3 of 6 frames · 1 failed · GIF being made",
            f"run {three} · 3 of 6 frames · 1 failed · disabled: no runs are fetched",
        ], lines

        # The Create form: the stage's sources for each kind, the fields of that kind only
        create = page.locator("form#create")
        said = page.locator("#create-said")
        kind, source = create.locator("select[name=kind]"), create.locator("select[name=source]")
        options = lambda select: select.locator("option").all_inner_texts()  # noqa: E731
        label = lambda name: create.locator("label", has=page.locator(f"[name='{name}']"))  # noqa: E731
        expect(source.locator("option")).to_have_count(2)  # demo and demo-overlay: the observing sources
        assert options(source) == ["demo (default)", "demo-overlay"]
        expect(source).to_have_value("demo")
        expect(create).to_contain_text("a frame every 5 min")
        expect(create.locator("[name='forecast.source']")).to_be_hidden()
        expect(create.locator("[name='basemap.layers']")).to_be_hidden()  # no basemap chosen
        basemaps = create.locator("select[name='basemap.source']")  # any source, by kind
        assert options(basemaps) == ["none", "demo (default)", "demo-overlay", "demo-forecast"]
        assert basemaps.locator("optgroup").evaluate_all("gs => gs.map(g => g.label)") == ["Observations", "Forecasts"]
        expect(create.locator("input[name=format][value=gif]")).to_be_checked()
        expect(create.locator("input[name=format][value=gif]")).to_be_disabled()
        snap(create, "create-observed.png")
        assert page.evaluate(OVERLAPS, "form#create > *") == []

        # A forecast: its sources, its labels; refused at the field the API names, then made
        kind.select_option("forecast")
        assert options(source) == ["demo-forecast"]
        expect(label("source")).to_contain_text("Forecast source")
        expect(create).to_contain_text("runs every 1 h, 6 h ahead, a frame every 15 min")
        expect(label("frames")).to_contain_text("Frames of a run")
        expect(create.locator(".kind-hint")).to_contain_text("one model run of a forecast source")
        create.locator("input[name=imageId]").fill("ahead")
        create.locator("input[name=width]").fill("320")
        create.locator("input[name=height]").fill("240")
        create.locator("input[name=frames]").fill("4")
        create.locator("input[name=format][value=mp4]").check()
        snap(create, "create-forecast.png")
        create.get_by_role("button", name="Create").click()  # every 10 min: not on the source's 15-minute steps
        expect(said).to_contain_text(
            "Not saved: interval: must be a multiple of map source 'demo-forecast''s step (900 s)"
        )
        expect(create.locator("input[name=interval]")).to_have_attribute("aria-invalid", "true")
        expect(said).to_be_in_viewport()
        snap(create, "create-forecast-refused.png")
        create.locator("input[name=interval]").fill("15")
        create.get_by_role("button", name="Create").click()
        expect(said).to_contain_text("Animation ahead saved.")
        expect(page.locator("section.animation[data-image-id=ahead] .meta.config")).to_contain_text(
            "forecast · demo-forecast"
        )
        body = json.loads(sent[-1].post_data)
        assert (body["kind"], body["source"], body["formats"], body["interval"]) == (
            "forecast",
            "demo-forecast",
            ["gif", "mp4"],
            900,
        )
        assert "forecast" not in body and "basemap" not in body
        saved = call(stack.url + "animations/ahead")
        assert (saved["kind"], saved["source"], saved["formats"], saved["frames"]) == (
            "forecast",
            "demo-forecast",
            ["gif", "mp4"],
            4,
        )

        # A loop: the observing sources again, and its forecast part
        kind.select_option("loop")
        assert options(source) == ["demo (default)", "demo-overlay"]
        expect(label("source")).to_contain_text("Observed from")
        assert options(create.locator("select[name='forecast.source']")) == ["demo-forecast"]
        create.locator("input[name=imageId]").fill("blend")
        create.locator("input[name=interval]").fill("10")
        create.locator("input[name='forecast.layers']").fill("flat-dk, radar")
        create.locator("input[name='forecast.frames']").fill("3")
        create.locator("input[name=format][value=mp4]").uncheck()
        create.locator("input[name=format][value=webp]").check()
        snap(create, "create-loop.png")
        assert page.evaluate(OVERLAPS, "form#create > *") == []
        create.get_by_role("button", name="Create").click()
        expect(said).to_contain_text("Animation blend saved.")
        body = json.loads(sent[-1].post_data)
        assert body["forecast"] == {"source": "demo-forecast", "frames": 3, "layers": ["flat-dk", "radar"]}
        saved = call(stack.url + "animations/blend")
        assert (saved["kind"], saved["source"], saved["formats"]) == ("loop", "demo", ["gif", "webp"])
        assert saved["forecast"] == {"source": "demo-forecast", "layers": ["flat-dk", "radar"], "frames": 3}

        # An overlay over a basemap: its layers asked for once a basemap is chosen; refused without them
        kind.select_option("observed")
        source.select_option("demo-overlay")
        create.locator("input[name=imageId]").fill("overlay")
        create.locator("input[name=layers]").fill("radar")
        create.locator("select[name='basemap.source']").select_option("demo")
        expect(create.locator("input[name='basemap.layers']")).to_be_visible()
        create.get_by_role("button", name="Create").click()
        expect(said).to_contain_text("Not saved: basemap.layers: ")
        expect(create.locator("input[name='basemap.layers']")).to_have_attribute("aria-invalid", "true")
        snap(create, "create-basemap-refused.png")
        create.locator("input[name='basemap.layers']").fill("flat-dk")
        create.get_by_role("button", name="Create").click()
        expect(said).to_contain_text("Animation overlay saved.")
        expect(page.locator("section.animation[data-image-id=overlay] .meta.config")).to_contain_text(
            "observed · demo-overlay"
        )
        saved = call(stack.url + "animations/overlay")
        assert (saved["kind"], saved["source"], saved["basemap"]) == (
            "observed",
            "demo-overlay",
            {"source": "demo", "layers": ["flat-dk"]},
        )

        # The edit form keeps the kind, sources, forecast part, basemap and formats, and changes them
        blend = page.locator("section.animation[data-image-id=blend]")
        expect(blend.locator(".meta.config")).to_contain_text("loop · demo, then a forecast run")
        blend.get_by_role("button", name="Details", exact=True).click()
        expect(blend.locator(".configuration")).to_contain_text(
            "then the next 3 frames of the newest run of demo-forecast (flat-dk + radar)"
        )
        blend.get_by_role("button", name="Edit", exact=True).click()
        form = blend.locator("form.edit")
        expect(form.locator("select[name=kind]")).to_have_value("loop")
        expect(form.locator("select[name=source]")).to_have_value("demo")
        expect(form.locator("select[name='forecast.source']")).to_have_value("demo-forecast")
        expect(form.locator("input[name='forecast.frames']")).to_have_value("3")
        expect(form.locator("input[name='forecast.layers']")).to_have_value("flat-dk,radar")
        expect(form.locator("input[name=format][value=webp]")).to_be_checked()
        expect(form.locator("input[name=format][value=mp4]")).not_to_be_checked()
        expect(form.locator("input[name=every]")).to_be_visible()
        form.locator("input[name='forecast.frames']").fill("2")
        form.locator("input[name=format][value=mp4]").check()
        snap(blend, "edit-loop.png")
        form.get_by_role("button", name="Save").click()
        expect(blend.locator(".said")).to_contain_text("Edit: saved.")
        saved = call(stack.url + "animations/blend")
        assert (saved["kind"], saved["source"], saved["formats"]) == ("loop", "demo", ["gif", "webp", "mp4"])
        assert saved["forecast"] == {"source": "demo-forecast", "layers": ["flat-dk", "radar"], "frames": 2}
        assert saved["frames"] == 4 and saved["layers"] == ["flat-dk", "radar"]  # the rest kept

        # Narrow: one column, nothing wider than the window, nothing on top of anything
        page.set_viewport_size({"width": 400, "height": 900})
        kind.select_option("loop")
        page.wait_for_timeout(300)
        assert page.evaluate("() => document.documentElement.scrollWidth") <= 400
        assert page.evaluate(OVERLAPS, "form#create > *") == []
        assert page.evaluate(OVERLAPS, "section.animation[data-image-id=outlook] .side > *") == []
        snap(outlook, "forecast-card-400.png")
        snap(create, "create-loop-400.png")
        page.evaluate("window.scrollTo(0, 0)")  # the cards' videos load as they come into view
        page.wait_for_function("() => [...document.querySelectorAll('video')].every(v => v.readyState >= 2)")
        page.screenshot(path=str(OUTPUT / "gallery-400.png"), full_page=True)
        assert refused(400, problems) == [], problems  # the two refusals the form showed, and nothing else
        browser.close()
