"""The mediator's decisions as pure functions: no table, no queue, no clock."""

from __future__ import annotations

import json

import pytest

from chalicelib.mediator import decide
from chalicelib.mediator.animation import Animation, EmailSpec, ThumbnailSpec
from chalicelib.mediator.decide import AnimationState, Frame, Links
from chalicelib.messages import DidCreateGif, DidCreateThumbnail, DidFail, DidFetchAmpImage, Location, MessageError
from chalicelib.model import Invalid

TEMPS = Animation(
    image_id="temps",
    layers=["flat-dk", "temperatures"],
    width=800,
    height=600,
    center="tulsa,ok",
    zoom=4,
    interval=600,
    frames=4,
    every=2,
    thumbnails=[ThumbnailSpec(width=200, height=150), ThumbnailSpec(width=64, height=64, mode="contain")],
    email=EmailSpec(to=["desk@example.com"], from_="wx@example.com"),
)


def loc(key: str) -> Location:
    return Location(bucket="frames", key=key)


def frames(*times: int) -> list[Frame]:
    return [Frame(t, loc(f"temps/{t}.png")) for t in times]


PERIOD = 60  # the fetch tick's


def state(**changes) -> AnimationState:
    return AnimationState(TEMPS)._replace(**changes)


def asked(decisions: list[decide.Decision]) -> list[int]:
    return [m.valid_time for d in decisions for m in d.messages]


class TestFetchSchedule:
    """Frames on each animation's interval grid, each asked for at a stable phase of its own."""

    def test_a_phase_is_stable_a_whole_number_of_ticks_and_less_than_the_interval(self):
        phases = {decide.phase(TEMPS.replace(image_id=f"a{i}"), PERIOD) for i in range(500)}
        assert phases == {k * PERIOD for k in range(10)}  # 600 s: ten one-minute phases, all used
        assert decide.phase(TEMPS, PERIOD) == decide.phase(TEMPS, PERIOD)
        assert decide.phase(TEMPS.replace(interval=60), PERIOD) == 0

    def test_a_tick_asks_about_one_in_interval_minutes_of_the_animations(self):
        animations = [TEMPS.replace(image_id=f"a{i:04d}") for i in range(5000)]
        per_minute = [
            sum(decide.is_due(a.interval, decide.phase(a, PERIOD), 1_700_000_400 + m * 60, PERIOD) for a in animations)
            for m in range(10)
        ]
        assert sum(per_minute) == 5000 and max(per_minute) < 5000 / 10 * 1.2  # each once, spread over ten minutes

    def test_the_newest_frame_is_asked_for_at_its_phase_on_the_grid(self):
        offset = decide.phase(TEMPS, PERIOD)
        grid = 1_700_000_400  # a multiple of 600
        before = decide.next_fetches(state(last_requested=grid - 600), grid + offset - 60, PERIOD)
        assert before == []  # its phase has not come: the frame before is the newest due, asked already
        [decision] = decide.next_fetches(state(last_requested=grid - 600), grid + offset, PERIOD)
        [request] = decision.messages
        assert request.valid_time == grid and request.correlation_id == f"run-temps-{grid}"
        assert (request.layers, request.width, request.center) == (["flat-dk", "temperatures"], 800, "tulsa,ok")
        [claim] = decision.changes
        assert claim == decide.ClaimFetches("temps", (request,), grid - 600)  # kept, to be sent again

    def test_a_new_animation_asks_for_its_whole_window_at_once(self):
        grid = 1_700_000_400
        now = grid + decide.phase(TEMPS, PERIOD)
        assert asked(decide.next_fetches(state(), now, PERIOD)) == [grid - 1800, grid - 1200, grid - 600, grid]

    def test_a_gap_is_filled_within_the_window_and_a_source_serves_only_so_far_back(self):
        grid = 1_700_000_400
        now = grid + decide.phase(TEMPS, PERIOD)
        assert asked(decide.next_fetches(state(last_requested=grid - 1200), now, PERIOD)) == [grid - 600, grid]
        assert asked(decide.next_fetches(state(last_requested=grid - 86400), now, PERIOD)) == [
            grid - 1800,
            grid - 1200,
            grid - 600,
            grid,
        ]  # a day disabled: the window, not the day
        served = decide.next_fetches(state(), now, PERIOD, back=now - (grid - 1200))
        assert asked(served) == [grid - 1200, grid - 600, grid]

    def test_nothing_when_asked_already_or_disabled(self):
        grid = 1_700_000_400
        now = grid + decide.phase(TEMPS, PERIOD)
        assert decide.next_fetches(state(last_requested=grid), now, PERIOD) == []
        assert decide.next_fetches(AnimationState(TEMPS.replace(enabled=False)), now, PERIOD) == []

    def test_a_failed_frame_of_the_window_is_asked_again_and_one_out_of_it_dropped(self):
        grid = 1_700_000_400
        now = grid + decide.phase(TEMPS, PERIOD)
        failed = ((grid - 1200, 1), (grid - 7200, 2))  # one in the window, one long gone
        [decision] = decide.next_fetches(state(last_requested=grid, failed_slots=failed), now, PERIOD)
        [claim] = decision.changes
        assert [(r.valid_time, r.attempt) for r in claim.retried] == [(grid - 1200, 1)]
        assert claim.requests == () and claim.dropped == ((grid - 7200, 2),)

    def test_a_window_of_a_hundred_frames_is_claimed_in_chunks_each_from_the_one_before(self):
        grid = 1_700_000_400
        big = TEMPS.replace(frames=100)
        decisions = decide.next_fetches(AnimationState(big), grid + decide.phase(big, PERIOD), PERIOD)
        assert [len(d.messages) for d in decisions] == [24, 24, 24, 24, 4]
        seen = [d.changes[0].seen_last_requested for d in decisions]
        assert seen[0] == 0 and seen[1:] == [d.changes[0].newest for d in decisions[:-1]]

    def test_a_scheduled_fetch_that_fails_is_asked_again_up_to_three_times(self):
        request = {"type": "please-fetch-amp-image", "imageId": "temps", "validTime": 600}
        for attempt, slot in ((None, (600, 1)), (1, (600, 2)), (2, (600, 3)), (3, None)):
            asked_again = dict(request, correlationId="run-temps-600", **({"attempt": attempt} if attempt else {}))
            failure = DidFail(type="did-fail-fetch-amp-image", error="timed out", request=asked_again)
            assert decide.on_failure(failure).changes[0].failed_slot == slot
        manual = DidFail(
            type="did-fail-fetch-amp-image", error="x", request=dict(request, correlationId="manual-temps-600")
        )
        assert decide.on_failure(manual).changes[0].failed_slot is None  # a person's: not on the schedule


class TestFrame:
    def test_records_once_and_forks_into_each_thumbnail(self):
        frame = DidFetchAmpImage(
            image_id="temps",
            valid_time=1200,
            location=loc("temps/1200.png"),
            correlation_id="run-1",
            requested_valid_time=1190,
        )
        decision = decide.on_frame(AnimationState(TEMPS, frame_count=1, newest_frame=600), frame, now=5)
        assert decision.key == "frame:temps:1200"
        sizes = [(m.width, m.height, m.mode) for m in decision.messages]
        assert sizes == [(200, 150, "cover"), (64, 64, "contain")]
        assert all(m.location == frame.location and m.correlation_id == "run-1" for m in decision.messages)
        [change] = decision.changes
        assert change == decide.RecordFrame(
            "temps", 1200, frame.location, "run-1", 1190, decision.messages, seen_count=1, newest=True
        )  # the requests kept on the frame; counted from the count it saw

    def test_the_frame_that_makes_a_gif_due_claims_it_in_the_same_decision(self):
        state = AnimationState(TEMPS, frame_count=3, newest_frame=1800)
        assert decide.gif_due_after(state)
        frame = DidFetchAmpImage(image_id="temps", valid_time=2400, location=loc("temps/2400.png"))
        decision = decide.on_frame(state, frame, now=5, others=frames(1800, 1200, 600))
        [change] = decision.changes
        assert change.gif is not None and change.gif.frame_times == (600, 1200, 1800, 2400)
        assert (change.gif.seen_gif_frame_count, change.gif.frame_count) == (0, 4)
        assert decision.messages[-1] == change.gif.request and change.gif.request.type == "please-create-gif"

    def test_an_old_frame_arriving_late_makes_no_gif(self):
        state = AnimationState(TEMPS, frame_count=5, gif_frame_count=4, newest_frame=3600)
        assert decide.gif_due_after(state)  # by the count; but the newest 4 frames do not include it
        frame = DidFetchAmpImage(image_id="temps", valid_time=600, location=loc("temps/600.png"))
        decision = decide.on_frame(state, frame, now=5, others=frames(3600, 3000, 2400, 1800))
        assert decision.changes[0].gif is None and decision.changes[0].newest is False
        assert [m.type for m in decision.messages] == ["please-create-thumbnail"] * 2


class TestGifRules:
    @pytest.mark.parametrize(
        "count, at_last_gif, due",
        [(3, 0, False), (4, 0, True), (5, 4, False), (6, 4, True), (9, 6, True), (7, 6, False)],
    )
    def test_first_at_n_frames_then_every_k(self, count, at_last_gif, due):
        assert decide.gif_due(AnimationState(TEMPS, frame_count=count, gif_frame_count=at_last_gif)) is due

    def test_k_defaults_to_n(self):
        plain = TEMPS.replace(every=None)
        assert not decide.gif_due(AnimationState(plain, frame_count=7, gif_frame_count=4))
        assert decide.gif_due(AnimationState(plain, frame_count=8, gif_frame_count=4))

    def test_rebuild_needs_frames_newer_than_the_latest_gif(self):
        assert decide.rebuild_due(AnimationState(TEMPS, frame_count=5, newest_frame=900, latest_gif=600))
        assert not decide.rebuild_due(AnimationState(TEMPS, frame_count=5, newest_frame=600, latest_gif=600))
        assert not decide.rebuild_due(AnimationState(TEMPS, frame_count=3, newest_frame=900, latest_gif=0))

    def test_a_gif_of_the_newest_n_frames_in_time_order(self):
        state = AnimationState(TEMPS, frame_count=6, gif_frame_count=4)
        decision = decide.gif_of(
            state, frames(3000, 2400, 1800, 600, 1200), now=9, reason="count", correlation_id="run-7"
        )
        [request] = decision.messages
        assert [l.key for l in request.locations] == [f"temps/{t}.png" for t in (1200, 1800, 2400, 3000)]
        assert request.valid_time == 3000 and decision.key == "gif:temps:3000"
        assert (request.delay, request.last_delay, request.loop) == (250, 1000, 0)
        [claim] = decision.changes
        assert (claim.seen_gif_frame_count, claim.frame_count, claim.frame_times) == (4, 6, (1200, 1800, 2400, 3000))

    def test_no_gif_of_too_few_frames(self):
        assert decide.gif_of(AnimationState(TEMPS, frame_count=3), frames(1, 2, 3), now=0, reason="count") is None


class TestGifDone:
    gif = DidCreateGif(
        image_id="temps",
        valid_time=3000,
        location=Location(bucket="gifs", key="temps/3000.gif"),
        correlation_id="run-7",
    )

    def test_asks_for_one_email_with_links(self):
        links = Links("https://s3/gif?sig", [(2400, "https://s3/t1?a=1&b=2")])
        decision = decide.on_gif(TEMPS, self.gif, links, now=10)
        [email] = decision.messages
        assert email.type == "please-send-email" and email.to == ["desk@example.com"]
        assert email.subject == "temps: new animation to 1970-01-01 00:50 UTC"
        assert email.email_id == "temps:3000" and email.correlation_id == "run-7"
        assert 'src="https://s3/gif?sig"' in email.body and "https://s3/t1?a=1&amp;b=2" in email.body
        assert decision.changes[0].email == email  # kept on the GIF until it is sent

    def test_route_links_go_in_as_given_and_the_email_promises_no_expiry(self):
        gif = "https://wx.example.com/api/animations/temps/gifs/3000/image"
        thumb = "https://wx.example.com/api/animations/temps/frames/2400/thumbnails/200x150-cover"
        [email] = decide.on_gif(TEMPS, self.gif, Links(gif, [(2400, thumb)]), now=10).messages
        assert email.body.count(f'href="{gif}"') == 2 and f'src="{gif}"' in email.body
        assert f'href="{thumb}"' in email.body and f'src="{thumb}"' in email.body
        assert "expire" not in email.body

    def test_no_email_without_recipients(self):
        quiet = TEMPS.replace(email=None)
        decision = decide.on_gif(quiet, self.gif, None, now=10)
        assert decision.messages == () and decision.changes[0].email is None


def test_failures_are_recorded_against_their_request():
    failure = DidFail(
        type="did-fail-fetch-amp-image",
        error="answered 404",
        correlation_id="run-3",
        request={"type": "please-fetch-amp-image", "imageId": "temps", "validTime": 600},
    )
    [change] = decide.on_failure(failure).changes
    assert change == decide.RecordFailure("temps", 600, "fetch-amp-image", "answered 404", "run-3", failure.request)


@pytest.mark.parametrize(
    ("request_", "recorded"),
    [
        ({"imageId": "x" * 5000, "validTime": 600}, ("-unattributed", 0)),
        ({"imageId": ["temps"], "validTime": "600"}, ("-unattributed", 0)),
        ({"imageId": "../etc", "validTime": 10**15}, ("-unattributed", 0)),
        ({"imageId": "temps", "validTime": True}, ("temps", 0)),
    ],
)
def test_a_failure_of_a_request_that_names_no_frame_is_recorded_as_unknown(request_, recorded):
    """The request comes back from a worker that could not read it: it names no table key."""
    failure = DidFail(type="did-fail-create-gif", error="bad", request=request_)
    [change] = decide.on_failure(failure).changes
    assert (change.image_id, change.valid_time) == recorded


class TestAnimationConfig:
    def test_every_cannot_exceed_frames(self):
        with pytest.raises(Invalid, match=r"'every' must not exceed frames \(4\): it is 5"):
            Animation.from_dict({**TEMPS.to_dict(), "every": 5})

    @pytest.mark.parametrize(
        "change", [{"interval": 10}, {"frames": 1}, {"zoom": 30}, {"thumbnails": [{"width": 0, "height": 5}]}]
    )
    def test_bounds(self, change):
        with pytest.raises(Invalid):
            Animation.from_dict({**TEMPS.to_dict(), **change})

    def test_round_trip(self):
        assert Animation.from_dict(TEMPS.to_dict()) == TEMPS
        assert TEMPS.to_dict()["email"]["from"] == "wx@example.com"


def test_message_errors_are_value_errors():
    assert issubclass(MessageError, ValueError)


def test_an_uploads_thumbnail_is_no_frames():
    """An upload's did-create-thumbnail names its source: it is logged, and no frame is touched."""
    upload = DidCreateThumbnail(
        image_id="upload",
        valid_time=1_700_000_000,
        location=Location(bucket="t-b", key="k"),
        width=40,
        height=30,
        source=Location(bucket="u-b", key="canyon-40x30.jpg"),
    )
    decision = decide.on_thumbnail(upload)
    assert decision.changes == () and decision.messages == () and decision.key == "upload:u-b/canyon-40x30.jpg"
    labelled = upload.replace(source=None, label="40x30-cover", image_id="temps")
    [change] = decide.on_thumbnail(labelled).changes
    assert change.label == "40x30-cover"


class TestEveryProblemNamed:
    BASE = {"imageId": "a" * 64, "layers": ["radar"], "width": 10, "height": 10, "center": "x", "zoom": 1}

    def test_every_beyond_frames_is_named_beside_other_problems(self):
        with pytest.raises(Invalid) as error:
            Animation.configured({**self.BASE, "every": 20, "zoom": 99})
        assert [path for path, _ in error.value.problems] == ["zoom", "every"]

    def test_bad_addresses_are_named_beside_other_problems(self):
        email = {"to": ["nope", "a@example.com"], "from": "wx@example.com"}
        with pytest.raises(Invalid) as error:
            Animation.configured({**self.BASE, "zoom": 99, "email": email})
        assert [path for path, _ in error.value.problems] == ["zoom", "email.to.0"]

    def test_a_subject_too_long_once_filled_in_is_refused_when_configured(self):
        email = {"to": ["a@example.com"], "from": "wx@example.com", "subject": "{imageId}" * 110}  # 990 characters
        with pytest.raises(Invalid, match="'email.subject' is 7040 characters with its placeholders filled in"):
            Animation.configured({**self.BASE, "email": email})

    def test_one_stored_before_that_check_has_its_subject_cut_to_a_header_line(self):
        stored = TEMPS.replace(
            email=EmailSpec(to=["desk@example.com"], from_="wx@example.com", subject="{imageId} {time}" * 60)
        )
        [email] = decide.on_gif(stored, TestGifDone.gif, Links("https://s3/gif", []), now=10).messages
        assert len(email.subject) == 998 and email.checked() is email


def test_a_kept_request_that_no_longer_reads_leaves_its_record_readable():
    from chalicelib.mediator import records

    item = {
        "validTime": 600,
        "status": "done",
        "emailRequest": json.dumps({"type": "please-send-email", "subject": ""}),
    }
    assert records.gif(item).email is None
