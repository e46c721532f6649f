"""The fetcher against a hostile map source: SSRF, leaked keys, trickling, keys, valid times.

Real HTTP to a loopback source (tests/mapsource.py); names other than 127.0.0.1 are
resolved by a stand-in for DNS, and nothing ever connects anywhere but loopback.
"""

from __future__ import annotations

import base64
import io
import ipaddress
import json
import logging
import re
import socket
import time
import zlib
from datetime import datetime, timezone
from email.utils import format_datetime
from urllib.parse import quote, quote_plus

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from chalicelib import redaction, safehttp
from chalicelib.errors import PermanentError
from chalicelib.workers import fetcher, runner
from local.mapsource import SHUTDOWN_POLL
from tests.images import encode, radar_frame
from tests.mapsource import FETCH, Answer, MapSource

CLIENT_ID, CLIENT_SECRET = "id-7f3a-client", "Sk/9+q=Zw8~xT"
FRAME = encode(radar_frame(0))
NAME = "maps.example.test"  # resolved by `dns` below, never by the real resolver


def forms(secret: str) -> list[str]:
    """The ways a source might echo a secret back."""
    data = secret.encode()
    return [
        secret,
        secret.upper(),
        secret.lower(),
        quote(secret, safe=""),
        quote(secret),
        quote_plus(secret),
        quote(secret, safe="").lower(),
        quote(quote(secret, safe=""), safe=""),
        base64.b64encode(data).decode(),
        base64.b64encode(data).decode().rstrip("="),
        base64.urlsafe_b64encode(data).decode(),
        base64.urlsafe_b64encode(data).decode().rstrip("="),
    ]


@pytest.fixture
def source(monkeypatch):
    server = MapSource()
    for name, value in server.environment(CLIENT_ID, CLIENT_SECRET).items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("FETCH_READ_TIMEOUT", "5")  # generous: under load a retry would take the next answer
    monkeypatch.setenv("FETCH_RETRIES", "1")
    server.start()  # after the environment is set: it keeps and puts back what it finds
    yield server
    server.stop()


@pytest.fixture
def dns(monkeypatch):
    """Answers for names: {name: [address, ...] or a function of the call count}; the
    calls made are in .calls. Other names go to the real resolver."""

    class Dns:
        def __init__(self):
            self.answers: dict[str, object] = {}
            self.calls: list[str] = []

        def __call__(self, host, port, family=0, kind=0, *args):
            if host not in self.answers:
                return real(host, port, family, kind, *args)
            self.calls.append(host)
            answer = self.answers[host]
            addresses = answer(len(self.calls)) if callable(answer) else answer
            out = []
            for address in addresses:
                if ipaddress.ip_address(address).version == 6:
                    out.append((socket.AF_INET6, socket.SOCK_STREAM, 6, "", (address, port, 0, 0)))
                else:
                    out.append((socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port)))
            return out

    real = socket.getaddrinfo
    fake = Dns()
    monkeypatch.setattr(safehttp, "getaddrinfo", fake)
    return fake


@pytest.fixture
def logs(caplog):
    """Everything logged at any level, by any logger, as text."""
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="urllib3")
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setLevel(logging.DEBUG)
    logging.getLogger().addHandler(handler)
    yield lambda: stream.getvalue() + caplog.text
    logging.getLogger().removeHandler(handler)


def named_template(source: MapSource) -> str:
    return source.template.replace("127.0.0.1", NAME)


def assert_failed(aws, *needles: str) -> dict:
    reply = aws.reply()
    assert reply["type"] == "did-fail-fetch-amp-image", reply
    for needle in needles:
        assert needle in reply["error"], reply["error"]
    assert aws.keys(aws.names.frames_bucket) == []
    return reply


class TestAllowList:
    def test_a_redirect_to_the_metadata_address_behind_a_backslash_is_refused(self, aws, invoke_sns, source, dns):
        target = f"http://169.254.169.254\\@127.0.0.1:{source.port}/"
        source.answer(Answer(302, b"", {"Location": target}), Answer(body=FRAME))
        invoke_sns("fetch_amp_image", FETCH)
        reply = assert_failed(aws, "http://169.254.169.254:80 is not on the fetch allow-list")
        assert len(source.paths) == 1  # the redirect was not followed anywhere
        assert dns.calls == []
        assert CLIENT_SECRET not in json.dumps(reply)

    def test_a_redirect_to_another_port_of_an_allowed_host_is_refused(self, aws, invoke_sns, source):
        other = MapSource().start()
        try:
            other.answer(Answer(body=FRAME))
            source.answer(Answer(302, b"", {"Location": f"http://127.0.0.1:{other.port}/frame.png"}))
            invoke_sns("fetch_amp_image", FETCH)
            assert_failed(aws, f"http://127.0.0.1:{other.port} is not on the fetch allow-list")
            assert other.paths == []
        finally:
            other.stop()

    def test_a_port_written_in_the_allow_list_is_allowed(self, aws, invoke_sns, source, monkeypatch):
        other = MapSource().start()
        try:
            monkeypatch.setenv("FETCH_ALLOWED_HOSTS", f"127.0.0.1,127.0.0.1:{other.port}")
            other.answer(Answer(body=FRAME))
            source.answer(Answer(302, b"", {"Location": f"http://127.0.0.1:{other.port}/frame.png"}))
            invoke_sns("fetch_amp_image", FETCH)
            assert aws.reply()["type"] == "did-fetch-amp-image"
            assert other.paths == ["/frame.png"]
        finally:
            other.stop()

    def test_a_redirect_on_the_same_origin_is_followed_and_its_secret_masked(self, aws, invoke_sns, source):
        source.answer(Answer(302, b"", {"Location": f"/elsewhere/{quote(CLIENT_SECRET, safe='')}.png"}), Answer(404))
        invoke_sns("fetch_amp_image", FETCH)
        reply = assert_failed(aws, f"at http://127.0.0.1:{source.port} (after 1 redirect) answered 404")
        assert "/elsewhere" not in reply["error"]  # a fetch is named by its source and origin, never its path
        assert source.paths[1] == f"/elsewhere/{quote(CLIENT_SECRET, safe='')}.png"
        assert not any(form in json.dumps(reply) for form in forms(CLIENT_SECRET))

    def test_redirects_are_capped(self, aws, invoke_sns, source):
        source.respond = lambda path: Answer(302, b"", {"Location": "/again"})
        invoke_sns("fetch_amp_image", FETCH)
        assert_failed(aws, f"redirected more than {fetcher.MAX_REDIRECTS} times")
        assert len(source.paths) == fetcher.MAX_REDIRECTS + 1

    def test_user_info_and_other_schemes_are_refused(self, aws, invoke_sns, source):
        source.answer(Answer(302, b"", {"Location": f"http://user:pw@127.0.0.1:{source.port}/x"}))
        invoke_sns("fetch_amp_image", FETCH)
        assert_failed(aws, "user info")
        source.answer(Answer(302, b"", {"Location": "file:///etc/passwd"}))
        invoke_sns("fetch_amp_image", FETCH)
        assert_failed(aws, "is not http or https")
        assert len(source.paths) == 2

    def test_the_default_allow_list_knows_xweather(self, monkeypatch):
        from chalicelib.settings import fetch_settings

        monkeypatch.delenv("FETCH_ALLOWED_HOSTS", raising=False)
        hosts = fetch_settings().allowed_hosts
        assert {("maps.api.xweather.com", None), ("maps.aerisapi.com", None)} <= hosts
        policy = safehttp.Policy(hosts)
        assert policy.allows("https", "maps.api.xweather.com", 443)
        assert not policy.allows("https", "maps.api.xweather.com", 8443)
        assert not policy.allows("http", "maps.api.xweather.com", 443)
        assert not policy.allows("ftp", "maps.api.xweather.com", None)

    def test_a_wrong_allow_list_is_a_did_fail(self, aws, invoke_sns, source, monkeypatch):
        monkeypatch.setenv("FETCH_ALLOWED_NETWORKS", "not-a-network")
        invoke_sns("fetch_amp_image", FETCH)
        assert_failed(aws, "FETCH_ALLOWED_NETWORKS")
        assert source.paths == []


class TestAddresses:
    @pytest.mark.parametrize(
        "addresses",
        [
            ["127.0.0.1"],
            ["10.1.2.3"],
            ["169.254.169.254"],
            ["::ffff:169.254.169.254"],
            ["fd00:ec2::254"],
            ["100.64.0.1"],
            ["0.0.0.0"],
            ["::1"],
            ["127.0.0.1", "10.0.0.1"],
        ],
    )
    def test_a_name_that_resolves_to_a_private_address_is_refused(
        self, aws, invoke_sns, source, dns, monkeypatch, addresses
    ):
        monkeypatch.delenv("FETCH_ALLOWED_NETWORKS")
        monkeypatch.setenv("MAP_URL_TEMPLATE", named_template(source))
        monkeypatch.setenv("FETCH_ALLOWED_HOSTS", NAME)
        dns.answers[NAME] = addresses
        source.answer(Answer(body=FRAME))
        invoke_sns("fetch_amp_image", FETCH)
        assert_failed(aws, f"{NAME} resolves to {addresses[0]}, which is not a public address")
        assert source.paths == [] and dns.calls == [NAME]  # refused before connecting; not retried

    def test_loopback_is_refused_even_written_as_an_address_without_the_setting(
        self, aws, invoke_sns, source, monkeypatch
    ):
        monkeypatch.delenv("FETCH_ALLOWED_NETWORKS")
        source.answer(Answer(body=FRAME))
        invoke_sns("fetch_amp_image", FETCH)
        assert_failed(aws, "127.0.0.1 resolves to 127.0.0.1, which is not a public address")
        assert source.paths == []

    def test_an_allowed_network_lets_the_name_through(self, aws, invoke_sns, source, dns, monkeypatch):
        monkeypatch.setenv("FETCH_ALLOWED_NETWORKS", "127.0.0.0/8")
        monkeypatch.setenv("MAP_URL_TEMPLATE", named_template(source))
        monkeypatch.setenv("FETCH_ALLOWED_HOSTS", NAME)
        dns.answers[NAME] = ["127.0.0.1"]
        source.answer(Answer(body=FRAME))
        invoke_sns("fetch_amp_image", FETCH)
        assert aws.reply()["type"] == "did-fetch-amp-image"
        assert len(source.paths) == 1

    def test_dns_rebinding_cannot_get_through(self, aws, invoke_sns, source, dns, monkeypatch):
        """The first answer is one the fetcher may use (127.0.0.1 stands in for a public
        address here); every later answer is the metadata address. The connection goes to
        the address that was checked: the name is resolved once per connection."""
        monkeypatch.setenv("MAP_URL_TEMPLATE", named_template(source))
        monkeypatch.setenv("FETCH_ALLOWED_HOSTS", NAME)
        dns.answers[NAME] = lambda call: ["127.0.0.1"] if call == 1 else ["169.254.169.254"]
        source.answer(Answer(body=FRAME))
        invoke_sns("fetch_amp_image", FETCH)
        assert aws.reply()["type"] == "did-fetch-amp-image"
        assert dns.calls == [NAME] and len(source.paths) == 1

    def test_a_new_connection_resolves_again_and_is_checked_again(self, aws, invoke_sns, source, dns, monkeypatch):
        monkeypatch.setenv("MAP_URL_TEMPLATE", named_template(source))
        monkeypatch.setenv("FETCH_ALLOWED_HOSTS", NAME)
        dns.answers[NAME] = lambda call: ["127.0.0.1"] if call == 1 else ["169.254.169.254"]
        # The source closes the connection after a 503; the retry needs a new one.
        source.answer(Answer(503, b"", {"Connection": "close"}), Answer(body=FRAME))
        invoke_sns("fetch_amp_image", FETCH)
        assert_failed(aws, "resolves to 169.254.169.254")
        assert dns.calls == [NAME, NAME] and len(source.paths) == 1

    @pytest.mark.parametrize(
        "address, public",
        [
            ("93.184.216.34", True),
            ("2606:2800:220:1:248:1893:25c8:1946", True),
            ("127.0.0.1", False),
            ("10.0.0.1", False),
            ("172.16.5.4", False),
            ("192.168.1.1", False),
            ("169.254.169.254", False),
            ("100.64.0.1", False),
            ("0.0.0.0", False),
            ("224.0.0.1", False),
            ("240.0.0.1", False),
            ("255.255.255.255", False),
            ("::1", False),
            ("::", False),
            ("fe80::1", False),
            ("fc00::1", False),
            ("fd00:ec2::254", False),
            ("::ffff:127.0.0.1", False),
            ("::ffff:93.184.216.34", True),
            ("2002:a9fe:a9fe::1", False),
            ("64:ff9b::a9fe:a9fe", False),
            ("ff02::1", False),
            ("fec0::1", False),
        ],
    )
    def test_public(self, address, public):
        assert safehttp.public(ipaddress.ip_address(address)) is public

    def test_no_connection_is_made_outside_a_client(self):
        import requests

        session = requests.Session()
        session.mount("http://", safehttp._Adapter())
        with pytest.raises(safehttp.Refused):
            session.get("http://127.0.0.1:9/")


class TestDeadline:
    def test_a_trickling_source_is_cut_off_at_the_deadline(self, aws, invoke_sns, source, monkeypatch):
        monkeypatch.setenv("FETCH_DEADLINE", "1")
        source.answer(Answer(body=FRAME, trickle=0.05))  # every read is quick; the whole is not
        started = time.monotonic()
        invoke_sns("fetch_amp_image", FETCH)
        assert time.monotonic() - started < 4
        assert_failed(aws, "fetch deadline of 1 s", "FETCH_DEADLINE")

    def test_a_source_slower_than_the_deadline_is_cut_off_while_it_thinks(self, aws, invoke_sns, source, monkeypatch):
        monkeypatch.setenv("FETCH_DEADLINE", "0.5")
        monkeypatch.setenv("FETCH_READ_TIMEOUT", "10")
        source.answer(Answer(body=FRAME, delay=3))
        started = time.monotonic()
        invoke_sns("fetch_amp_image", FETCH)
        assert time.monotonic() - started < 2.5
        assert_failed(aws, "fetch deadline of 0.5 s")

    def test_a_resolver_that_hangs_is_cut_off_at_the_deadline(self, aws, invoke_sns, source, monkeypatch):
        monkeypatch.setenv("FETCH_DEADLINE", "0.5")

        def hangs(*args, **kwargs):
            time.sleep(3)
            raise socket.gaierror("too late")

        monkeypatch.setattr(safehttp, "getaddrinfo", hangs)
        started = time.monotonic()
        invoke_sns("fetch_amp_image", FETCH)
        assert time.monotonic() - started < 2.5
        assert_failed(aws, "fetch deadline of 0.5 s")

    def test_the_deadline_never_passes_the_invocations_time(self, monkeypatch):
        from chalicelib.settings import fetch_settings

        class Context:
            def get_remaining_time_in_millis(self):
                return 8000

        monkeypatch.setenv("FETCH_DEADLINE", "25")
        token = runner.lambda_context.set(Context())
        try:
            assert fetcher.fetch_deadline(fetch_settings()) == 6.0  # a quarter is kept for the answer
        finally:
            runner.lambda_context.reset(token)


class TestSecrets:
    def test_a_source_that_echoes_the_secret_publishes_it_nowhere(self, aws, invoke_sns, source, logs, capsys):
        def echo(path: str) -> Answer:
            page = f"<h1>Not found</h1><p>{path}</p>" + " ".join(f"<i>{form}</i>" for form in forms(CLIENT_SECRET))
            return Answer(404, page.encode(), {"Content-Type": "text/html"})

        source.respond = echo
        invoke_sns("fetch_amp_image", FETCH)
        reply = assert_failed(aws, "answered 404", "Not found")
        out = capsys.readouterr()
        published = json.dumps(reply) + logs() + out.out + out.err
        assert "GET /" in logs()  # urllib3's request line was logged, redacted
        for form in forms(CLIENT_SECRET) + forms(CLIENT_ID):
            assert form not in published, form
        assert "***" in reply["error"]

    def test_a_secret_in_a_redirect_target_or_a_header_is_masked(self, aws, invoke_sns, source, logs):
        encoded = base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
        source.answer(Answer(302, b"", {"Location": f"http://evil.example/{encoded}?k={quote_plus(CLIENT_SECRET)}"}))
        invoke_sns("fetch_amp_image", FETCH)
        reply = assert_failed(aws, "is not on the fetch allow-list")
        for form in forms(CLIENT_SECRET):
            assert form not in json.dumps(reply) + logs(), form
        source.answer(Answer(body=FRAME, headers={"x-aeris-valid-date": f"soon {CLIENT_SECRET}"}))
        invoke_sns("fetch_amp_image", FETCH)
        reply = assert_failed(aws, "x-aeris-valid-date")
        assert CLIENT_SECRET not in json.dumps(reply)

    def test_a_passing_error_is_raised_again_without_the_secret(self, aws, invoke_sns, source, monkeypatch, logs):
        def broken(url, source, config, deadline=None):
            raise OSError(f"connection to {url} reset")

        monkeypatch.setattr(fetcher, "download", broken)
        with pytest.raises(runner.PassingError) as raised:
            invoke_sns("fetch_amp_image", FETCH)
        assert str(raised.value).startswith(f"OSError: connection to http://127.0.0.1:{source.port}/***_***/")
        assert raised.value.__suppress_context__
        for form in forms(CLIENT_SECRET) + forms(CLIENT_ID):
            assert form not in str(raised.value) + logs(), form
        assert aws.replies() == []

    def test_the_redactor_finds_every_form(self):
        redactor = redaction.Redactor([CLIENT_SECRET, "ab"])
        for form in forms(CLIENT_SECRET):
            assert redactor(f"before {form} after") == "before *** after", form
        inside = base64.b64encode(b"GET /x_" + CLIENT_SECRET.encode() + b"/y HTTP/1.1").decode()
        assert all(form not in redactor(inside) for form in forms(CLIENT_SECRET))
        assert redactor("ab is too short to redact") == "ab is too short to redact"

    def test_the_redactor_decodes_what_it_matches(self):
        """Any character of the secret percent-encoded (either hex case, once, twice, three times),
        as an HTML reference or a JSON escape, mixed with plain ones, is the secret."""
        redactor = redaction.Redactor([CLIENT_SECRET])
        spelled = []
        for i, char in enumerate(CLIENT_SECRET):
            for form in (f"%{ord(char):02X}", f"%{ord(char):02x}", f"%25{ord(char):02X}", f"%2525{ord(char):02x}"):
                spelled.append(CLIENT_SECRET[:i] + form + CLIENT_SECRET[i + 1 :])
            spelled.append(CLIENT_SECRET[:i] + f"&#{ord(char)};" + CLIENT_SECRET[i + 1 :])
            spelled.append(CLIENT_SECRET[:i] + f"\\u{ord(char):04x}" + CLIENT_SECRET[i + 1 :])
        spelled.append("".join(f"%{ord(char):02X}" for char in CLIENT_SECRET))
        spelled.append("".join(f"%25{ord(char):02x}" if i % 2 else char for i, char in enumerate(CLIENT_SECRET)))
        for text in spelled:
            assert redactor(f"GET /x_{text}/y") == "GET /x_***/y", text
        assert redactor("Sk/9+q=Zw8~x") == "Sk/9+q=Zw8~x"  # not the secret: one character short
        assert redactor("%2F%2B%3D") == "%2F%2B%3D"

    def test_an_excerpt_never_keeps_half_a_secret(self):
        redactor = redaction.Redactor([CLIENT_SECRET])
        data = b" " * 4000 + CLIENT_SECRET.encode()[:8]  # the start of a longer answer: the rest is cut
        assert CLIENT_SECRET[:8] not in redactor.excerpt(data, 200, truncated=True)

    def test_log_records_are_redacted_however_they_carry_the_secret(self, logs):
        token = redaction.scoped()
        try:
            redaction.activate(redaction.Redactor([CLIENT_SECRET]))
            logging.getLogger("urllib3.connectionpool").debug('"GET /%s HTTP/1.1" 200', CLIENT_SECRET)
            try:
                raise ValueError(f"boom {quote(CLIENT_SECRET, safe='')}")
            except ValueError:
                logging.getLogger("chalicelib").exception("failed", extra={"url": f"/{CLIENT_SECRET}"})
        finally:
            redaction.end_scope(token)
        text = logs()
        assert "GET /*** HTTP/1.1" in text and "boom ***" in text
        assert all(form not in text for form in forms(CLIENT_SECRET))


class TestKeys:
    def test_a_keyless_template_never_reads_keys(self, aws, invoke_sns, source, monkeypatch):
        from chalicelib import credentials

        def no_ssm(parameter):
            raise AssertionError(f"read {parameter}")

        monkeypatch.delenv("MAP_CLIENT_ID")
        monkeypatch.delenv("MAP_CLIENT_SECRET")
        monkeypatch.setenv("MAP_KEYS_PARAMETER", "/weathergif/dev/map-keys")  # not in SSM either
        monkeypatch.setattr(credentials, "secret", no_ssm)
        monkeypatch.setenv(
            "MAP_URL_TEMPLATE",
            f"http://127.0.0.1:{source.port}/wms?LAYERS={{layers}}&BBOX={{bbox}}&WIDTH={{width}}&HEIGHT={{height}}"
            "&TIME={iso_time}",
        )
        source.answer(Answer(body=FRAME))
        invoke_sns("fetch_amp_image", {**FETCH, "center": "36.15,-95.99"})
        assert aws.reply()["type"] == "did-fetch-amp-image"

    @pytest.mark.parametrize("value, error", [(None, "ParameterNotFound"), ("no-colon-here", "client_secret")])
    def test_missing_or_unusable_keys_are_a_did_fail(self, aws, invoke_sns, source, monkeypatch, value, error):
        from chalicelib.aws import parameters
        from chalicelib.aws import client

        monkeypatch.delenv("MAP_CLIENT_ID")
        monkeypatch.delenv("MAP_CLIENT_SECRET")
        # The dev stage's configuration names this parameter (chalice's test client sets it).
        monkeypatch.setenv("MAP_KEYS_PARAMETER", "/weathergif/dev/map-keys")
        parameters.cache_clear()  # secrets are read once per container
        if value is not None:
            client("ssm").put_parameter(Name="/weathergif/dev/map-keys", Type="SecureString", Value=value)
        try:
            invoke_sns("fetch_amp_image", FETCH)
        finally:
            parameters.cache_clear()  # secrets are read once per container
        reply = assert_failed(aws, error)
        assert "no-colon-here" not in json.dumps(reply)
        assert source.paths == []

    def test_a_throttled_read_of_the_keys_is_retried(self, aws, invoke_sns, source, monkeypatch):
        from botocore.exceptions import ClientError

        from chalicelib import credentials

        def throttled(parameter):
            raise ClientError({"Error": {"Code": "ThrottlingException", "Message": "slow down"}}, "GetParameter")

        monkeypatch.delenv("MAP_CLIENT_ID")
        monkeypatch.setattr(credentials, "secret", throttled)
        with pytest.raises(ClientError):
            invoke_sns("fetch_amp_image", FETCH)
        assert aws.replies() == []

    def test_a_secret_too_short_to_redact_is_refused(self, aws, invoke_sns, source, monkeypatch):
        monkeypatch.setenv("MAP_CLIENT_SECRET", "abc")
        invoke_sns("fetch_amp_image", FETCH)
        assert_failed(aws, "shorter than 4 characters")
        assert source.paths == []


class TestValidTime:
    @pytest.mark.parametrize(
        "header",
        [
            "2023-11-14T22:15:00+00:00",
            "2023-11-14T22:15:00Z",
            "2023-11-14T23:15:00+01:00",
            "2023-11-14T22:15:00",
            "2023-11-14 22:15:00Z",
            "2023-11-14T22:15:00.250Z",
            "20231114T221500Z",
            "20231114221500",
            "1700000100",
            "1700000100000",
            "1700000100.5",
            "Tue, 14 Nov 2023 22:15:00 GMT",
            "Tue, 14 Nov 2023 17:15:00 -0500",
        ],
    )
    def test_every_documented_form_is_read(self, header):
        assert fetcher.answered_valid_time(header, 1700000000) == 1700000100

    @pytest.mark.parametrize(
        "header, error",
        [
            ("yesterday", "is not a time"),
            ("2023-13-45T00:00:00Z", "is not a time"),
            ("99999999999999", "is not a time"),
            ("1" * 5000, "is not a time"),
            ("-5", "before 1970"),
            ("1700260000", "more than a day"),
            ("1600000000", "more than a day from the requested time"),
        ],
    )
    def test_an_unreadable_or_absurd_one_is_refused(self, header, error):
        with pytest.raises(PermanentError, match=error):
            fetcher.answered_valid_time(header, 1700000000, now=1700000000)

    def test_no_header_means_the_requested_time(self):
        assert fetcher.answered_valid_time(None, 1700000000) == 1700000000
        assert fetcher.answered_valid_time("  ", 1700000000) == 1700000000

    def test_the_14_digit_form_is_stored_under_its_time(self, aws, invoke_sns, source):
        source.answer(Answer(body=FRAME, headers={"x-aeris-valid-date": "20231114221500"}))
        invoke_sns("fetch_amp_image", FETCH)
        reply = aws.reply()
        assert reply["validTime"] == 1700000100
        assert aws.keys(aws.names.frames_bucket) == ["temps/320x240/1700000100.png"]

    def test_an_unreadable_one_is_a_did_fail_and_nothing_is_stored(self, aws, invoke_sns, source):
        source.answer(Answer(body=FRAME, headers={"x-aeris-valid-date": "next tuesday"}))
        invoke_sns("fetch_amp_image", FETCH)
        assert_failed(aws, "x-aeris-valid-date 'next tuesday' is not a time")

    def test_a_reply_that_fails_its_own_validation_is_a_did_fail(self, aws, invoke_sns, source):
        last = 32503680000  # the contract's last valid time; the source answers an hour later
        source.answer(Answer(body=FRAME, headers={"x-aeris-valid-date": str(last + 3600)}))
        invoke_sns("fetch_amp_image", {**FETCH, "validTime": last})
        reply = assert_failed(aws, "'validTime' must be at most 32503680000")
        assert reply["errorType"] == "MessageError"


# Messages for the runner: valid ones, and ones broken in every way a sender could.
_valid = st.fixed_dictionaries(
    {
        "type": st.just("please-fetch-amp-image"),
        "imageId": st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,20}", fullmatch=True),
        "layers": st.lists(
            st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_:.()\-]{0,10}", fullmatch=True), min_size=1, max_size=3
        ),
        "width": st.integers(16, 48),
        "height": st.integers(16, 48),
        "center": st.sampled_from(["tulsa,ok", "36.15,-95.99", "paris", "o'hare, il"]),
        "zoom": st.integers(0, 22),
        "validTime": st.integers(0, 32503680000),
    },
    optional={
        "dateCreated": st.integers(0, 2**40),
        "correlationId": st.text(max_size=10),
        "runId": st.text(max_size=10),
    },
)
_junk = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**30), 10**30),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=30),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=2),
)
_keys = st.sampled_from(
    [
        "type",
        "imageId",
        "layers",
        "width",
        "height",
        "center",
        "zoom",
        "validTime",
        "dateCreated",
        "correlationId",
        "error",
        "errorType",
        "request",
        "location",
        "requestedValidTime",
        "Bucket",
        "source",
        "runTime",
        "basemap",
    ]
)


@st.composite
def messages(draw):
    message = draw(_valid)
    for _ in range(draw(st.integers(0, 3))):
        key = draw(_keys)
        if draw(st.booleans()):
            message[key] = draw(_junk)
        else:
            message.pop(key, None)
    shape = draw(st.sampled_from(["dict", "json", "text"]))
    if shape == "json":
        return json.dumps(message)
    if shape == "text":
        return draw(st.one_of(st.text(max_size=40), st.just("[]"), st.just("null"), st.just('{"type": 5}')))
    return message


def _answer_for(path: str) -> Answer:
    """A frame of the asked size; its valid time in one of the forms, or not a time at all."""
    match = re.search(r"/(\d+)x(\d+)/[^/]*/(\d{14})\.png$", path)
    if not match:
        return Answer(404, b"no")
    width, height, stamp = int(match[1]), int(match[2]), match[3]
    when = datetime.strptime(stamp, "%Y%m%d%H%M%S").replace(tzinfo=timezone.utc)
    seconds = int(when.timestamp())
    headers = [
        None,
        stamp,
        str(seconds),
        str(seconds * 1000),
        when.isoformat(),
        format_datetime(when),
        "garbage",
        "-1",
        "1e400",
    ]
    header = headers[zlib.crc32(path.encode()) % len(headers)]
    return Answer(body=encode(radar_frame(0, width, height)), headers={"x-aeris-valid-date": header} if header else {})


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
@given(message=messages())
def test_the_runner_answers_every_message_exactly_once(aws, source, message):
    """Whatever arrives, the fetch worker answers once with a did-* message (or raises only
    what may pass, with nothing answered)."""
    source.respond = _answer_for
    token = runner.lambda_context.set(None)  # not an earlier test's (expired) Lambda context
    try:
        result = runner.run(fetcher.WORKER, message)
    except fetcher.SourceUnavailable:
        assert aws.replies() == []
        return
    finally:
        runner.lambda_context.reset(token)
    assert result["type"] in ("did-fetch-amp-image", "did-fail-fetch-amp-image")
    aws.reply_to(result)
    failed = result["type"].startswith("did-fail-")
    event(result["type"] + (f" ({result['errorType']})" if failed else ""))


@pytest.mark.integration  # TLS servers on loopback
class TestTls:
    """The connection goes to the checked address, but TLS still speaks to the name: SNI
    carries it and the certificate must be for it."""

    @pytest.fixture
    def https(self, tmp_path):
        import datetime
        import ssl
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        x509 = pytest.importorskip("cryptography.x509")
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID

        def certificate(name: str) -> tuple[str, str]:
            key = ec.generate_private_key(ec.SECP256R1())
            subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
            now = datetime.datetime.now(datetime.timezone.utc)
            cert = (
                x509.CertificateBuilder()
                .subject_name(subject)
                .issuer_name(subject)
                .public_key(key.public_key())
                .serial_number(x509.random_serial_number())
                .not_valid_before(now - datetime.timedelta(days=1))
                .not_valid_after(now + datetime.timedelta(days=1))
                .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
                .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                .sign(key, hashes.SHA256())
            )
            cert_path, key_path = tmp_path / f"{name}.pem", tmp_path / f"{name}.key"
            cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
            key_path.write_bytes(
                key.private_bytes(
                    serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
                )
            )
            return str(cert_path), str(key_path)

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        servers = []

        def serve(name: str):
            cert, key = certificate(name)
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(cert, key)
            seen: list[str | None] = []
            context.sni_callback = lambda sock, server_name, ctx: seen.append(server_name)
            server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
            server.socket = context.wrap_socket(server.socket, server_side=True)
            threading.Thread(target=server.serve_forever, args=(SHUTDOWN_POLL,), daemon=True).start()
            servers.append(server)
            return server.server_address[1], cert, seen

        yield serve
        for server in servers:
            server.shutdown()
            server.server_close()

    def get(self, port: int, ca: str) -> int:
        policy = safehttp.Policy(frozenset({(NAME, port)}), networks=(ipaddress.ip_network("127.0.0.1/32"),))
        with safehttp.Client(policy, deadline=5, retries=0, connect_timeout=2, read_timeout=2) as client:
            client.session.verify = ca
            prepared, _ = client.prepare(f"https://{NAME}:{port}/x")
            with client.send(prepared) as response:
                return response.status_code

    def test_sni_and_the_certificate_are_for_the_name(self, https, dns):
        dns.answers[NAME] = ["127.0.0.1"]
        port, ca, seen = https(NAME)
        assert self.get(port, ca) == 200
        assert seen == [NAME] and dns.calls == [NAME]

    def test_a_certificate_for_another_name_is_refused(self, https, dns):
        import requests

        dns.answers[NAME] = ["127.0.0.1"]
        port, ca, _ = https("other.example.test")
        with pytest.raises(requests.exceptions.SSLError):
            self.get(port, ca)


def test_the_sdk_never_logs_a_secure_parameters_value_even_at_debug(aws, caplog):
    """botocore logs whole responses at DEBUG, before the fetcher knows what to redact in them."""
    import logging

    import chalicelib.log  # noqa: F401 (its import sets the SDK's loggers)
    from chalicelib.aws import client, parameters

    client("ssm").put_parameter(Name="/weathergif/dev/map-keys", Type="SecureString", Value="myclientid:Sup3rS3cret")
    parameters.cache_clear()
    with caplog.at_level(logging.DEBUG):
        assert parameters().secret("/weathergif/dev/map-keys").endswith("Sup3rS3cret")
    parameters.cache_clear()
    assert "Sup3rS3cret" not in caplog.text
