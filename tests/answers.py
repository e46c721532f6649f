"""openapi.json as a test reads it: each answer of the app checked against the schema the document
declares for its route, method and status (tests/test_api_answers.py, tests/test_api_properties.py)."""

from __future__ import annotations

import copy
import json
import re
from typing import Any

JSON = "application/json"
AUTH = {"Authorization": "Bearer s3cret-token", "Content-Type": JSON}  # the token tests/test_api_answers.py sets
CONFIG = {  # an animation as the API takes it: the API tests' starting point
    "layers": ["flat-dk", "radar"],
    "width": 320,
    "height": 240,
    "center": "tulsa,ok",
    "zoom": 6,
    "frames": 2,
    "thumbnails": [{"width": 80, "height": 60}],
}
# Where an answer holds something whole that is not the API's own shape (a message, a request that
# failed, the document's own parts): its keys are not the API's to close.
OPEN = re.compile(r"^(asked|events\.\d+\.message|deadLetters\.\d+\.message|unattributed\.\d+\.request)(\.|$)")
OPEN_DOCUMENT = re.compile(r"^(components|paths)(\.|$)")


class Answers:
    """Calls of the app, each answer checked against openapi.json; which (path, method, status) were seen.

    `closed`: also check that a key added to any of an answer's objects (but where it holds something
    whole that is not the API's: OPEN) makes it invalid, which only a closed schema says."""

    def __init__(self, client: Any, closed: bool = True):
        from jsonschema import Draft202012Validator

        self.client = client
        self.closed = closed
        self.document = json.loads(client.http.get("/openapi.json").body)
        self.paths = [
            (re.compile("^" + re.sub(r"\\\{\w+\\\}", "[^/]+", re.escape(path)) + "$"), path)
            for path in self.document["paths"]
        ]
        self.seen: set[tuple[str, str, str]] = set()
        self.validator = Draft202012Validator
        self.validators: dict[str, Any] = {}
        self.checked = 0

    def path_of(self, target: str) -> str | None:
        """The document's path a target reaches (as Chalice routes it: segment by segment), if any."""
        found = [path for pattern, path in self.paths if pattern.match(target.partition("?")[0])]
        assert len(found) <= 1, (target, found)
        return found[0] if found else None

    def __call__(
        self, method: str, target: str, body: Any = None, headers: dict[str, str] = AUTH, raw: bytes | None = None
    ) -> tuple[int, Any]:
        data = raw if raw is not None else json.dumps(body).encode() if body is not None else b""
        response = self.client.http.request(method, target, headers=headers, body=data)
        return response.status_code, self.check(method, target, response)

    def declares(self, method: str, target: str, status: int) -> bool:
        """Whether the route this target reaches declares this answer."""
        path = self.path_of(target)
        operation = self.document["paths"][path].get(method.lower(), {}) if path else {}
        return str(status) in operation.get("responses", {})

    def check(self, method: str, target: str, response: Any) -> Any:
        """The answer's body, once it is found to be an answer the route declares, as it declares it."""
        path, status = self.path_of(target), str(response.status_code)
        where = f"{method} {target} -> {status}"
        assert path is not None, f"{where}: no route of openapi.json"
        responses = self.document["paths"][path][method.lower()]["responses"]
        assert status in responses, f"{where}: not an answer openapi.json declares: {response.body[:500]!r}"
        declared = responses[status]
        sent = {name.lower(): value for name, value in response.headers.items()}
        for name, header in declared.get("headers", {}).items():
            assert not header.get("required") or name.lower() in sent, f"{where}: no {name} header"
        media = sent.get("content-type", JSON).split(";")[0].strip()
        assert media in declared.get("content", {}), f"{where}: {media}, not {sorted(declared.get('content', {}))}"
        schema = declared["content"][media]["schema"]
        payload = json.loads(response.body) if media == JSON else response.body.decode()
        self.validate(schema, payload, where, OPEN_DOCUMENT if path == "/openapi.json" else OPEN)
        if status == "302":
            assert payload["location"] == sent["location"], where
        self.seen.add((path, method, status))
        return payload

    def validate(self, schema: dict[str, Any], payload: Any, where: str, open_: re.Pattern[str]) -> None:
        key = json.dumps(schema, sort_keys=True)
        if key not in self.validators:
            self.validators[key] = self.validator(
                {**schema, "components": self.document["components"]}, format_checker=self.validator.FORMAT_CHECKER
            )
        validator = self.validators[key]
        problems = [
            f"{'.'.join(map(str, e.absolute_path)) or '(the body)'}: {e.message}"
            for e in validator.iter_errors(payload)
        ]
        assert not problems, f"{where}: the answer is not as openapi.json says:\n" + "\n".join(problems[:20])
        self.checked += 1
        for at in _objects(payload) if self.closed else ():  # a key its schema does not declare, anywhere, is refused
            if open_.match(".".join(at)):
                continue
            changed = copy.deepcopy(payload)
            _at(changed, at)["undeclared"] = True
            assert not validator.is_valid(changed), f"{where}: a key added at {'.'.join(at) or 'the top'} is valid"


def _objects(value: Any, at: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """The path of every JSON object in an answer."""
    found = []
    if isinstance(value, dict):
        found.append(at)
        for key, item in value.items():
            found += _objects(item, (*at, str(key)))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += _objects(item, (*at, str(index)))
    return found


def _at(value: Any, at: tuple[str, ...]) -> Any:
    for key in at:
        value = value[int(key)] if isinstance(value, list) else value[key]
    return value
