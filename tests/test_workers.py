"""Each worker through chalice.test.Client with real-shaped events, against moto's server."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from PIL import Image

from tests.images import encode, jpeg, quadrants, radar_frame
from tests.mapsource import FETCH, Answer, MapSource

CLIENT_ID, CLIENT_SECRET = "id-7f3a", "secret-9c2b"


def image_of(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def same_request_same_bytes(aws, invoke) -> None:
    """A worker asked the same twice (`invoke` asks once) writes the same key with the same bytes, and
    answers each time (none the second time if alike to the millisecond: the queue drops a duplicate)."""
    first = invoke()
    aws.reply_to(first)
    made = aws.get(**first["location"])
    second = invoke()
    aws.reply_to(second)
    assert second["location"] == first["location"] and aws.get(**second["location"]) == made


@pytest.fixture
def source(monkeypatch):
    server = MapSource()
    monkeypatch.setenv("MAP_URL_TEMPLATE", server.template)
    monkeypatch.setenv("MAP_CLIENT_ID", CLIENT_ID)
    monkeypatch.setenv("MAP_CLIENT_SECRET", CLIENT_SECRET)
    monkeypatch.setenv("FETCH_ALLOWED_HOSTS", "127.0.0.1")
    monkeypatch.setenv("FETCH_ALLOWED_NETWORKS", "127.0.0.1")  # the source is on loopback
    monkeypatch.setenv("FETCH_READ_TIMEOUT", "0.5")
    monkeypatch.setenv("FETCH_RETRIES", "2")
    server.start()  # after the environment is set: it keeps and puts back what it finds
    yield server
    server.stop()


class TestFetcher:
    def test_stores_the_frame_and_answers_the_mediator(self, aws, invoke_sns, source, capsys):
        body = encode(radar_frame(3))
        source.answer(Answer(body=body, headers={"x-aeris-valid-date": "2023-11-14T22:15:00+00:00"}))
        invoke_sns("fetch_amp_image", FETCH)

        reply = aws.reply()
        valid_time = 1700000100  # the source's valid time, not the requested one
        assert reply["type"] == "did-fetch-amp-image"
        assert (reply["imageId"], reply["validTime"], reply["requestedValidTime"]) == ("temps", valid_time, 1700000000)
        assert reply["location"] == {"Bucket": aws.names.frames_bucket, "Key": f"temps/320x240/{valid_time}.png"}
        assert reply["correlationId"] == "run-42"
        stored = aws.get(aws.names.frames_bucket, reply["location"]["Key"])
        assert stored == body and image_of(stored).size == (320, 240)
        assert source.paths == [f"/{CLIENT_ID}_{CLIENT_SECRET}/flat-dk,radar/320x240/tulsa,ok,4/20231114221320.png"]
        logs = capsys.readouterr()
        assert CLIENT_SECRET not in json.dumps(reply) + logs.out + logs.err + str(aws.keys(aws.names.frames_bucket))

    def test_same_request_same_key_same_bytes(self, aws, invoke_sns, source):
        body = encode(radar_frame(1))
        source.answer(Answer(body=body), Answer(body=body))
        first = invoke_sns("fetch_amp_image", FETCH)
        second = invoke_sns("fetch_amp_image", FETCH)
        assert first["location"] == second["location"]
        assert aws.keys(aws.names.frames_bucket) == ["temps/320x240/1700000000.png"]
        assert aws.get(**first["location"]) == body and len(source.paths) == 2
        # Both answers reach the mediator, or one: a FIFO queue drops a body it took in the last
        # five minutes, and two runs in the same second and millisecond answer alike.
        assert aws.replies() == ([first] if first == second else [first, second])

    def test_server_errors_are_retried(self, aws, invoke_sns, source):
        source.answer(Answer(503), Answer(502), Answer(body=encode(radar_frame(0))))
        invoke_sns("fetch_amp_image", FETCH)
        assert aws.reply()["type"] == "did-fetch-amp-image"
        assert len(source.paths) == 3

    def test_a_source_that_keeps_failing_raises_for_the_platform_to_retry(self, aws, invoke_sns, source):
        source.answer(*[Answer(500)] * 3)
        with pytest.raises(Exception, match="kept failing|answered 500"):
            invoke_sns("fetch_amp_image", FETCH)
        assert aws.replies() == []  # nothing told, nothing stored: the retry decides
        assert aws.keys(aws.names.frames_bucket) == []

    def test_a_timeout_raises_for_the_platform_to_retry(self, aws, invoke_sns, source, monkeypatch):
        # Three tries and their back-off stay well inside the fetch deadline, which chalice's
        # test client (a Lambda context of 3 s) makes about 2 s.
        monkeypatch.setenv("FETCH_READ_TIMEOUT", "0.3")
        source.answer(*[Answer(body=b"x", delay=1.0)] * 3)
        with pytest.raises(Exception, match="did not answer|kept failing"):
            invoke_sns("fetch_amp_image", FETCH)
        assert aws.replies() == []

    @pytest.mark.parametrize(
        "answer, error",
        [
            (Answer(404, b"no such layer", {"Content-Type": "text/plain"}), "answered 404"),
            (Answer(200, b"<html>login</html>", {"Content-Type": "text/html"}), "answered text/html, not an image"),
            (Answer(200, b"GIF89a-garbage"), "is not"),
            (Answer(200, encode(radar_frame(0, 640, 480))), "is 640x480, but 320x240 was asked"),
            (Answer(200, b"\x89PNG" + b"0" * 3000), "over the cap of 2048"),
        ],
    )
    def test_answers_that_can_never_work_are_reported_not_retried(
        self, aws, invoke_sns, source, monkeypatch, answer, error
    ):
        monkeypatch.setenv("FETCH_MAX_BYTES", "2048" if "cap" in error else "20000000")
        source.answer(answer)
        invoke_sns("fetch_amp_image", FETCH)
        reply = aws.reply()
        assert reply["type"] == "did-fail-fetch-amp-image"
        assert error in reply["error"]
        assert reply["request"]["imageId"] == "temps" and reply["correlationId"] == "run-42"
        assert CLIENT_SECRET not in reply["error"]
        assert len(source.paths) == 1
        assert aws.keys(aws.names.frames_bucket) == []

    def test_hosts_off_the_allow_list_are_never_fetched(self, aws, invoke_sns, source, monkeypatch):
        monkeypatch.setenv("FETCH_ALLOWED_HOSTS", "maps.aerisapi.com")
        invoke_sns("fetch_amp_image", FETCH)
        reply = aws.reply()
        assert reply["type"] == "did-fail-fetch-amp-image"
        assert f"http://127.0.0.1:{source.port} is not on the fetch allow-list" in reply["error"]
        assert source.paths == []

    def test_a_keyless_wms_template_gets_a_bounding_box(self, aws, invoke_sns, source, monkeypatch):
        monkeypatch.setenv(
            "MAP_URL_TEMPLATE",
            f"http://127.0.0.1:{source.port}/wms?LAYERS={{layers}}&BBOX={{bbox}}&WIDTH={{width}}&HEIGHT={{height}}&TIME={{iso_time}}",
        )
        source.answer(Answer(body=encode(radar_frame(0))))
        invoke_sns("fetch_amp_image", {**FETCH, "center": "36.15,-95.99", "layers": ["nexrad-n0q-wmst"]})
        assert aws.reply()["type"] == "did-fetch-amp-image"
        assert source.paths[0].startswith("/wms?LAYERS=nexrad-n0q-wmst&BBOX=-110.052500,25.603125,-81.927500,46.696875")
        assert source.paths[0].endswith("&WIDTH=320&HEIGHT=240&TIME=2023-11-14T22:13:20Z")

    def test_an_invalid_message_is_reported(self, aws, invoke_sns, source):
        invoke_sns("fetch_amp_image", {**FETCH, "width": "wide"})
        reply = aws.reply()
        assert reply["type"] == "did-fail-fetch-amp-image"
        assert reply["errorType"] == "MessageError" and "'width'" in reply["error"]
        assert reply["correlationId"] == "run-42"
        assert source.paths == []

    def test_text_that_is_not_json_is_reported(self, aws, invoke_sns, source):
        invoke_sns("fetch_amp_image", "hello")
        reply = aws.reply()
        assert reply["type"] == "did-fail-fetch-amp-image" and "not JSON" in reply["error"]
        assert reply["request"] == "hello"


def thumbnail_request(location, **extra):
    return {
        "type": "please-create-thumbnail",
        "imageId": "temps",
        "location": location,
        "width": 100,
        "height": 100,
        "validTime": 1700000000,
        **extra,
    }


class TestThumbnailer:
    def test_cover_thumbnail(self, aws, invoke_sns):
        source = aws.put(aws.names.frames_bucket, "temps/800x600/1700000000.png", encode(radar_frame(0, 800, 600)))
        invoke_sns("create_thumbnail", thumbnail_request(source, runId="r1"))
        reply = aws.reply()
        assert reply["type"] == "did-create-thumbnail" and reply["runId"] == "r1"
        assert reply["location"] == {"Bucket": aws.names.thumbnails_bucket, "Key": "temps/100x100-cover/1700000000.jpg"}
        image = image_of(aws.get(**reply["location"]))
        assert (image.format, image.size) == ("JPEG", (100, 100))

    def test_contain_thumbnail_and_png(self, aws, invoke_sns):
        source = aws.put(aws.names.frames_bucket, "f.png", encode(radar_frame(0, 800, 600)))
        invoke_sns("create_thumbnail", thumbnail_request(source, mode="contain", format="png"))
        reply = aws.reply()
        assert reply["location"]["Key"] == "temps/100x100-contain/1700000000.png"
        assert (reply["width"], reply["height"]) == (100, 75)
        assert image_of(aws.get(**reply["location"])).size == (100, 75)

    def test_same_request_same_bytes(self, aws, invoke_sns):
        source = aws.put(aws.names.frames_bucket, "f.jpg", jpeg(1200, 900))
        same_request_same_bytes(aws, lambda: invoke_sns("create_thumbnail", thumbnail_request(source)))

    @pytest.mark.parametrize(
        "data, error",
        [(None, "does not exist"), (b"not an image at all", "is not an image")],
    )
    def test_inputs_that_can_never_work(self, aws, invoke_sns, data, error):
        location = {"Bucket": aws.names.frames_bucket, "Key": "missing.png"}
        if data is not None:
            location = aws.put(aws.names.frames_bucket, "text.png", data)
        invoke_sns("create_thumbnail", thumbnail_request(location))
        reply = aws.reply()
        assert reply["type"] == "did-fail-create-thumbnail" and error in reply["error"]
        assert aws.keys(aws.names.thumbnails_bucket) == []

    def test_a_decompression_bomb_is_refused(self, aws, invoke_sns, monkeypatch):
        monkeypatch.setenv("MAX_IMAGE_PIXELS", "1000000")
        source = aws.put(aws.names.frames_bucket, "big.png", encode(Image.new("L", (2000, 2000))))
        invoke_sns("create_thumbnail", thumbnail_request(source))
        reply = aws.reply()
        assert reply["type"] == "did-fail-create-thumbnail"
        assert "(4000000 pixels), over the bound of 1000000" in reply["error"]


S3_EVENT = json.loads((Path(__file__).parent / "events" / "s3-put.json").read_text())


def s3_event(bucket: str, key: str) -> dict:
    event = json.loads(json.dumps(S3_EVENT))
    event["Records"][0]["s3"]["bucket"]["name"] = bucket
    event["Records"][0]["s3"]["bucket"]["arn"] = f"arn:aws:s3:::{bucket}"
    event["Records"][0]["s3"]["object"]["key"] = key
    return event


class TestUploadThumbnailer:
    def test_a_real_s3_event_with_an_encoded_key(self, aws, chalice_client):
        aws.put(aws.names.uploads_bucket, "grand canyon-400x300.jpg", jpeg(1600, 1200))
        result = chalice_client.lambda_.invoke(
            "thumbnail_upload", s3_event(aws.names.uploads_bucket, "grand+canyon-400x300.jpg")
        ).payload
        assert [r["type"] for r in result] == ["did-create-thumbnail"]
        assert aws.keys(aws.names.thumbnails_bucket) == ["uploads/grand canyon-400x300.jpg"]
        image = image_of(aws.get(aws.names.thumbnails_bucket, "uploads/grand canyon-400x300.jpg"))
        assert (image.format, image.size) == ("JPEG", (400, 300))
        reply = aws.reply()
        assert reply["source"] == {"Bucket": aws.names.uploads_bucket, "Key": "grand canyon-400x300.jpg"}
        assert reply["validTime"] == 1700000000  # the event's time

    def test_png_uploads_keep_png(self, aws, chalice_client):
        aws.put(aws.names.uploads_bucket, "logo-64x64.png", encode(quadrants(256, 256, "RGBA")))
        chalice_client.lambda_.invoke("thumbnail_upload", s3_event(aws.names.uploads_bucket, "logo-64x64.png"))
        assert image_of(aws.get(aws.names.thumbnails_bucket, "uploads/logo-64x64.png")).format == "PNG"

    def test_other_names_are_skipped(self, aws, chalice_client, caplog):
        aws.put(aws.names.uploads_bucket, "canyon.jpg", jpeg(100, 100))
        result = chalice_client.lambda_.invoke("thumbnail_upload", s3_event(aws.names.uploads_bucket, "canyon.jpg"))
        assert result.payload == []
        assert "skipped s3://" in caplog.text
        assert aws.keys(aws.names.thumbnails_bucket) == [] and aws.replies() == []

    @pytest.mark.parametrize(
        "key, error", [("huge-5000x10.jpg", "each side must be 1..4096"), ("zero-0x10.jpg", "0x10")]
    )
    def test_sizes_out_of_bounds_are_refused(self, aws, chalice_client, key, error):
        aws.put(aws.names.uploads_bucket, key, jpeg(100, 100))
        chalice_client.lambda_.invoke("thumbnail_upload", s3_event(aws.names.uploads_bucket, key))
        reply = aws.reply()
        assert reply["type"] == "did-fail-create-thumbnail" and error in reply["error"]
        assert aws.keys(aws.names.thumbnails_bucket) == []

    def test_an_upload_that_is_not_an_image(self, aws, chalice_client):
        aws.put(aws.names.uploads_bucket, "notes-10x10.jpg", b"just text")
        chalice_client.lambda_.invoke("thumbnail_upload", s3_event(aws.names.uploads_bucket, "notes-10x10.jpg"))
        assert "is not an image" in aws.reply()["error"]


def gif_request(locations, **extra):
    return {"type": "please-create-gif", "imageId": "temps", "locations": locations, "validTime": 1700000600, **extra}


class TestGifMaker:
    def frames(self, aws, count, size=(320, 240)):
        return [aws.put(aws.names.frames_bucket, f"temps/{i}.png", encode(radar_frame(i, *size))) for i in range(count)]

    def test_a_gif_of_the_frames_in_order(self, aws, invoke_sns):
        locations = self.frames(aws, 6)
        invoke_sns("create_gif", gif_request(locations, delay=100, loop=0, correlationId="c9"))
        reply = aws.reply()
        assert reply["type"] == "did-create-gif" and reply["correlationId"] == "c9"
        assert reply["location"] == {"Bucket": aws.names.gifs_bucket, "Key": "temps/1700000600.gif"}
        assert (reply["frames"], reply["width"], reply["height"]) == (6, 320, 240)
        image = image_of(aws.get(**reply["location"]))
        assert (image.format, image.n_frames, image.size, image.info["duration"]) == ("GIF", 6, (320, 240), 100)
        image.seek(5)
        newest = image.convert("RGB")
        assert newest.getpixel((60, 120)) == radar_frame(5).getpixel((60, 120))

    def test_frames_of_another_size_are_scaled(self, aws, invoke_sns):
        locations = self.frames(aws, 2) + [
            aws.put(aws.names.frames_bucket, "big.png", encode(radar_frame(2, 640, 480)))
        ]
        invoke_sns("create_gif", gif_request(locations))
        assert image_of(aws.get(**aws.reply()["location"])).size == (320, 240)

    def test_a_missing_frame_is_a_clear_error(self, aws, invoke_sns):
        locations = self.frames(aws, 2) + [{"Bucket": aws.names.frames_bucket, "Key": "temps/gone.png"}]
        invoke_sns("create_gif", gif_request(locations))
        reply = aws.reply()
        assert reply["type"] == "did-fail-create-gif"
        assert f"s3://{aws.names.frames_bucket}/temps/gone.png does not exist" in reply["error"]
        assert aws.keys(aws.names.gifs_bucket) == []

    def test_too_many_pixels_in_all_are_refused(self, aws, invoke_sns, monkeypatch):
        monkeypatch.setenv("MAX_GIF_PIXELS", "300000")
        invoke_sns("create_gif", gif_request(self.frames(aws, 4)))
        reply = aws.reply()
        assert reply["type"] == "did-fail-create-gif" and "of a 4-frame GIF" in reply["error"]

    def test_same_request_same_bytes(self, aws, invoke_sns):
        locations = self.frames(aws, 3)
        same_request_same_bytes(aws, lambda: invoke_sns("create_gif", gif_request(locations)))


EMAIL = {
    "type": "please-send-email",
    "to": ["forecast@example.com", "Desk <desk@example.com>"],
    "from": "Weather Desk <wx@example.com>",
    "subject": "Temperatures, 14 Nov 22:15 UTC",
    "body": '<h1>Temps</h1><p>The newest <a href="https://example.com/t.gif">GIF</a>.</p>',
}


class TestEmailer:
    def test_sends_html_with_a_text_alternative(self, aws, invoke_sns):
        invoke_sns("send_email", {**EMAIL, "runId": "r7"})
        reply = aws.reply()
        assert reply["type"] == "did-send-email" and reply["runId"] == "r7"
        assert reply["to"] == ["forecast@example.com", "Desk <desk@example.com>"]
        assert reply["sesMessageId"]
        [sent] = aws.emulator.sent_emails()
        assert sent["subject"] == EMAIL["subject"]
        assert sent["destinations"]["ToAddresses"] == reply["to"]
        assert sent["source"] == "Weather Desk <wx@example.com>"
        assert "<h1>Temps</h1>" in sent["body"]

    def test_the_text_alternative_links_the_gif_and_each_thumbnail(self, aws, invoke_sns, monkeypatch):
        """The plain-text part SES is given carries every link of the HTML the mediator wrote."""
        from chalicelib.aws.ses import Mail
        from chalicelib.mediator.decide import Links, email_html
        from chalicelib.messages import DidCreateGif, Location

        given = []
        send = Mail.send
        monkeypatch.setattr(Mail, "send", lambda mail, *args: given.append(args) or send(mail, *args))
        base = "https://api.example/animations/temps"
        gif_url = f"{base}/gifs/1700000000/image"
        thumbnails = [
            (1700000000 - 600 * i, f"{base}/frames/{1700000000 - 600 * i}/thumbnails/200x150-cover") for i in range(4)
        ]
        gif = DidCreateGif(image_id="temps", valid_time=1700000000, location=Location(bucket="g", key="temps/1.gif"))
        invoke_sns("send_email", {**EMAIL, "body": email_html(gif, Links(gif_url, thumbnails))})
        assert aws.reply()["type"] == "did-send-email"
        [(_, _, _, html, text)] = given
        for url in [gif_url, *(url for _, url in thumbnails)]:
            assert f'href="{url}"' in html and f"<{url}>" in text, (url, text)

    @pytest.mark.parametrize(
        "change, error",
        [
            ({"to": ["not-an-address"]}, "'to.0' 'not-an-address' is not a valid address"),
            ({"to": ["a@example.com, b@example.com"]}, "is not one email address"),
            ({"subject": "Hi\r\nBcc: everyone@example.com"}, "'subject' must not contain line breaks"),
            ({"from": "wx@example.com\nBcc: x@example.com"}, "'from' must not contain line breaks"),
            ({"from": "unverified@example.org"}, "SES refused the email"),
        ],
    )
    def test_bad_addresses_and_header_injection(self, aws, invoke_sns, change, error):
        invoke_sns("send_email", {**EMAIL, **change})
        reply = aws.reply()
        assert reply["type"] == "did-fail-send-email"
        assert error in reply["error"]
        assert aws.emulator.sent_emails() == []


def test_html_to_text():
    from chalicelib.htmltext import html_to_text

    text = html_to_text(
        "<style>p{}</style><h1>Temps</h1><p>See the <a href='https://x.example/a.gif'>GIF</a>"
        "<br>and <img alt='thumb' src='t.jpg'></p><ul><li>one</li><li>two</li></ul>"
    )
    assert text == "Temps\n\nSee the GIF <https://x.example/a.gif>\nand [thumb]\n\n- one\n\n- two\n"


def test_the_fetcher_reads_its_keys_from_a_secure_parameter(aws, invoke_sns, source, monkeypatch):
    from chalicelib.aws import parameters
    from chalicelib.aws import client

    monkeypatch.delenv("MAP_CLIENT_ID")
    monkeypatch.delenv("MAP_CLIENT_SECRET")
    monkeypatch.setenv("MAP_KEYS_PARAMETER", "/weathergif/dev/map-keys")
    parameters.cache_clear()  # secrets are read once per container
    client("ssm").put_parameter(Name="/weathergif/dev/map-keys", Type="SecureString", Value="ssm-id:ssm-secret")
    source.answer(Answer(body=encode(radar_frame(0))))
    invoke_sns("fetch_amp_image", FETCH)
    assert aws.reply()["type"] == "did-fetch-amp-image"
    assert source.paths[0].startswith("/ssm-id_ssm-secret/")
    parameters.cache_clear()  # secrets are read once per container
