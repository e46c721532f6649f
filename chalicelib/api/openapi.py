"""The API's OpenAPI 3.1 document, served at /openapi.json, generated from the one route table.

Chalice's `app.routes` (app.py's decorators) gives each path, its methods and whether an
authorizer guards it; each route module (animations.py, images.py, runs.py, operations.py, site.py,
sources.py) says the rest beside each route's body with @documented:
its docstring (summary, then description), its query parameters, its request body and its
answers, each with its schema: a record of schemas.py (or the model's), whose JSON Schema is one of
the document's components. A route with an authorizer is marked secured and may answer 401 and 403;
path parameters are described once each, by the name app.py's paths give them.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, NamedTuple, TypeVar

import msgspec

from .. import __version__
from .schemas import Denied, Error, Unauthorized, components

JSON = "application/json"
HTML = "text/html"
# A schema: a record (a msgspec Struct: its schema is a component, referenced) or a JSON Schema.
Schema = type[msgspec.Struct] | dict[str, Any]
ERRORS = {  # what an error the app makes means, by status, unless a route says otherwise
    400: "a bad body, parameter or path part: the field and the reason",
    404: "no such animation",
    409: "the animation's state does not allow it now",
}
# A route's authorizer (auth.py): a bearer token, which API Gateway refuses before the route runs, with
# answers of its own (chalice local copies them): no token, 401 {"message": "Unauthorized"}; a token the
# authorizer denies, 403 {"Message": "User is not authorized to access this resource"}, a capital M.
BEARER = {"type": "http", "scheme": "bearer", "description": "API_TOKEN: `Authorization: Bearer <token>`"}
DENIED = {
    "401": {
        "description": "no token: API Gateway's own answer, `message`",
        "content": {JSON: {"schema": Unauthorized}},
    },
    "403": {
        "description": "a wrong token: API Gateway's own answer to the authorizer's denial, `Message` (a capital M)",
        "content": {JSON: {"schema": Denied}},
    },
}
PLACEHOLDER = re.compile(r"\{(\w+)\}")


F = TypeVar("F", bound=Callable[..., Any])


class Operation(NamedTuple):
    """What openapi.json says of a route besides its path, method and authorizer."""

    summary: str
    description: str
    query: tuple[dict[str, Any], ...]
    body: Schema | None  # the request body's
    responses: dict[str, Any]

    @classmethod
    def of(
        cls,
        function: Callable[..., Any],
        responses: Iterable[dict[str, Any]],
        query: Iterable[dict[str, Any]] = (),
        body: Schema | None = None,
    ) -> Operation:
        """A route body's description: its docstring's first paragraph the summary, the rest the description."""
        paragraphs = [" ".join(p.split()) for p in re.split(r"\n\s*\n", function.__doc__ or "") if p.strip()]
        if not paragraphs:
            raise ValueError(f"{function.__name__}: a documented route needs a docstring (its summary)")
        merged: dict[str, Any] = {}
        for part in responses:
            merged.update(part)
        return cls(paragraphs[0], "\n\n".join(paragraphs[1:]), tuple(query), body, merged)

    def openapi(self, route: Any) -> dict[str, Any]:
        """The operation object for a route of Chalice's table (a RouteEntry)."""
        out: dict[str, Any] = {"summary": self.summary}
        if self.description:
            out["description"] = self.description
        if self.query:
            out["parameters"] = [{"in": "query", **parameter} for parameter in self.query]
        if self.body is not None:
            out["requestBody"] = {
                "required": True,
                "content": {media: {"schema": self.body} for media in route.content_types},
            }
        out["responses"] = dict(self.responses)
        if route.authorizer is not None:
            out["security"] = [{route.authorizer.name: []}]
            out["responses"].update(DENIED)
        return out


OPERATIONS: dict[str, Operation] = {}  # by the body's name, which is its handler's in app.py


def documented(
    *responses: dict[str, Any], query: tuple[dict[str, Any], ...] = (), body: Schema | None = None
) -> Callable[[F], F]:
    """Describe a route's body for openapi.json: its docstring (summary, then description), the query
    parameters it takes, its request body's schema and its answers (401 and 403 come with an authorizer)."""

    def register(function: F) -> F:
        OPERATIONS[function.__name__] = Operation.of(function, responses, query, body)
        return function

    return register


def answer(
    description: str,
    schema: Schema | None = None,
    status: int = 200,
    media: str = JSON,
    headers: Iterable[str] = (),
) -> dict[str, Any]:
    """An answer of the route's own: {status: response}, its body of `media` (JSON: an object `schema`
    describes; HTML: text) and the headers it always carries."""
    if media == JSON and schema is None:
        raise ValueError(f"{description!r}: a JSON answer needs its schema")
    response: dict[str, Any] = {"description": description}
    if headers:
        response["headers"] = {name: {"required": True, "schema": {"type": "string"}} for name in headers}
    response["content"] = {media: {"schema": schema if schema is not None else {"type": "string"}}}
    return {str(status): response}


def errors(*statuses: int) -> dict[str, Any]:
    """The app's own errors, {"error", "field"}, as ERRORS describes them."""
    return {k: v for status in statuses for k, v in error(status, ERRORS[status]).items()}


def error(status: int, description: str) -> dict[str, Any]:
    """One of the app's own errors, described for a route."""
    return {str(status): {"description": description, "content": {JSON: {"schema": Error}}}}


def query(name: str, schema: dict[str, Any], description: str = "") -> dict[str, Any]:
    """A query parameter (each once, and none a route does not take: 400)."""
    return {"name": name, **({"description": description} if description else {}), "schema": schema}


def document(
    table: Mapping[str, Mapping[str, Any]],
    operations: Mapping[str, Operation],
    path_parameters: Mapping[str, dict[str, Any]],
) -> dict[str, Any]:
    """The document for Chalice's route table (app.routes): each route described by the Operation
    of its view's name (app.py's handler and its body in its API module share it), each path parameter
    by path_parameters (keyed by the name in the table's path, holding the documented name)."""
    paths: dict[str, dict[str, Any]] = {}
    schemes: dict[str, dict[str, Any]] = {}
    for path, methods in table.items():
        placeholders = PLACEHOLDER.findall(path)
        unknown = [name for name in placeholders if name not in path_parameters]
        if unknown:
            raise LookupError(f"{path}: no description of the path parameters {unknown}")
        item = paths.setdefault(PLACEHOLDER.sub(lambda m: "{%s}" % path_parameters[m.group(1)]["name"], path), {})
        if placeholders:
            item["parameters"] = [{**path_parameters[name], "in": "path", "required": True} for name in placeholders]
        for method, route in methods.items():
            if route.view_name not in operations:
                raise LookupError(f"{method} {path}: its body, routes.{route.view_name}, is not @documented")
            item[method.lower()] = operations[route.view_name].openapi(route)
            if route.authorizer is not None:
                schemes[route.authorizer.name] = BEARER
    records = list(dict.fromkeys(_records(paths)))
    schemas, definitions = components(records)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "weathergif",
            "version": __version__,
            "description": "Weather map frames to animated GIFs, thumbnails and emails.",
        },
        "components": {"securitySchemes": schemes, "schemas": definitions},
        "paths": _referenced(paths, dict(zip(records, schemas))),
    }


def _records(value: Any) -> Iterator[type[msgspec.Struct]]:
    """The records the operations name as schemas, in order."""
    if isinstance(value, type) and issubclass(value, msgspec.Struct):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _records(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _records(item)


def _referenced(value: Any, schemas: Mapping[type[msgspec.Struct], dict[str, Any]]) -> Any:
    """The operations with each record named as a schema replaced by its schema (a $ref)."""
    if isinstance(value, type) and issubclass(value, msgspec.Struct):
        return schemas[value]
    if isinstance(value, dict):
        return {key: _referenced(item, schemas) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_referenced(item, schemas) for item in value]
    return value
