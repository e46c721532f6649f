"""The API's OpenAPI 3.1 document, served at /openapi.json (a test keeps it in step with app.py)."""

from __future__ import annotations

from typing import Any

from .. import __version__
from ..mediator.animation import Animation
from .routes import IMAGE_LINK_SECONDS

ID = {"name": "imageId", "in": "path", "required": True, "schema": {"type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9_.\\-]{0,63}$"}}
LIMIT = {"name": "limit", "in": "query", "description": "ASCII digits; each parameter once, and none a route does not take (400)",
         "schema": {"type": "integer", "minimum": 1, "maximum": 100}}
AUTH = [{"token": []}]
VALID_TIME = {"name": "validTime", "in": "path", "required": True, "description": "the frame's or the GIF's validTime (epoch seconds)",
              "schema": {"type": "string", "pattern": "^(0|[1-9][0-9]{0,11})$"}}
LABEL = {"name": "label", "in": "path", "required": True, "description": "a thumbnail's label, as its frame lists it (200x150-cover)",
         "schema": {"type": "string", "pattern": "^[1-9][0-9]{0,3}x[1-9][0-9]{0,3}(-(cover|contain))?$"}}
REDIRECT = {"302": {
    "description": f"to a presigned URL of the image, made now and good for {IMAGE_LINK_SECONDS // 60} minutes",
    "headers": {"Location": {"schema": {"type": "string"}}, "Cache-Control": {"schema": {"type": "string"}}},
}}


def _ok(description: str, schema: dict[str, Any] | None = None, status: str = "200") -> dict[str, Any]:
    content = {"application/json": {"schema": schema or {"type": "object"}}}
    return {status: {"description": description, "content": content}}


ERRORS = {
    "400": {"description": "a bad body or parameter: the field and the reason", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
    "404": {"description": "no such animation or run", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
}
NO_IMAGE = {
    "400": ERRORS["400"],
    "404": {"description": "no such image (or the GIF is not made yet)", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
}
CONFLICT = {"409": {"description": "the animation's state does not allow it now", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}}
DENIED = {"401": {"description": "no token"}, "403": {"description": "a wrong token"}}
TOO_LARGE = {"413": {"description": "a body of over 64 KB", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}}
WITH_TOKEN = ("Public; `email` (the recipients and sender) is included only when the request carries the token "
              "(Authorization: Bearer)")


def document() -> dict[str, Any]:
    schemas = Animation.model_json_schema(by_alias=True, ref_template="#/components/schemas/{model}")
    definitions = schemas.pop("$defs", {})
    return {
        "openapi": "3.1.0",
        "info": {"title": "weathergif", "version": __version__,
                 "description": "Weather map frames to animated GIFs, thumbnails and emails."},
        "components": {
            "securitySchemes": {"token": {"type": "http", "scheme": "bearer", "description": "API_TOKEN"}},
            "schemas": {
                "Animation": schemas,
                **definitions,
                "Error": {"type": "object", "required": ["error"],
                          "properties": {"error": {"type": "string"}, "field": {"type": "string"}}},
            },
        },
        "paths": {
            "/": {"get": {"summary": "The web page", "responses": {"200": {"description": "HTML", "content": {"text/html": {}}}}}},
            "/health": {"get": {"summary": "Version, and whether the table, buckets and queue answer",
                                "responses": {**_ok("healthy"), "503": {"description": "something does not answer"}}}},
            "/openapi.json": {"get": {"summary": "This document", "responses": _ok("OpenAPI 3.1")}},
            "/animations": {"get": {
                "summary": "Animations, a page at a time", "description": WITH_TOKEN,
                "parameters": [LIMIT, {"name": "after", "in": "query", "schema": {"type": "string"}}],
                "responses": {**_ok("animations and the id to continue after (next)"), **ERRORS}}},
            "/animations/{imageId}": {
                "parameters": [ID],
                "get": {"summary": "One animation: configuration and counts", "description": WITH_TOKEN, "responses": {**_ok("the animation", {"$ref": "#/components/schemas/Animation"}), **ERRORS}},
                "put": {"summary": "Create or replace an animation", "security": AUTH,
                        "description": "A JSON object of at most 64 KB, camelCase keys, strict types (true is not 1, "
                                       "\"800\" is not 800), each key once; email addresses are checked. Of concurrent "
                                       "creates of one id, exactly one answers 201.",
                        "requestBody": {"required": True, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Animation"}}}},
                        "responses": {**_ok("replaced"), **_ok("created", status="201"), **ERRORS, **DENIED, **TOO_LARGE}},
                "delete": {"summary": "Delete an animation (its schedule stops); keep or remove its images", "security": AUTH,
                           "parameters": [{"name": "images", "in": "query", "schema": {"enum": ["keep", "remove"]}}],
                           "responses": {**_ok("deleted"), **ERRORS, **DENIED}},
            },
            "/animations/{imageId}/fetch": {"parameters": [ID], "post": {
                "summary": "Fetch a frame now", "security": AUTH,
                "responses": {**_ok("asked for (the please-fetch-amp-image message)", status="202"), **ERRORS, **CONFLICT, **DENIED}}},
            "/animations/{imageId}/gif": {"parameters": [ID], "post": {
                "summary": "Build a GIF of the newest N frames now", "security": AUTH,
                "responses": {**_ok("asked for (the please-create-gif message)", status="202"), **ERRORS, **CONFLICT, **DENIED}}},
            "/animations/{imageId}/frames": {"parameters": [ID], "get": {
                "summary": "Newest frames, with links to them and their thumbnails (routes that redirect to the image)", "parameters": [LIMIT],
                "responses": {**_ok("frames"), **ERRORS}}},
            "/animations/{imageId}/gifs": {"parameters": [ID], "get": {
                "summary": "GIFs, newest first, with links", "parameters": [LIMIT], "responses": {**_ok("GIFs"), **ERRORS}}},
            "/animations/{imageId}/gifs/{validTime}/image": {"parameters": [ID, VALID_TIME], "get": {
                "summary": "A GIF: a redirect to it (the links in emails and answers; they last as long as the GIF)",
                "responses": {**REDIRECT, **NO_IMAGE}}},
            "/animations/{imageId}/frames/{validTime}/image": {"parameters": [ID, VALID_TIME], "get": {
                "summary": "A frame: a redirect to it", "responses": {**REDIRECT, **NO_IMAGE}}},
            "/animations/{imageId}/frames/{validTime}/thumbnails/{label}": {"parameters": [ID, VALID_TIME, LABEL], "get": {
                "summary": "A frame's thumbnail: a redirect to it", "responses": {**REDIRECT, **NO_IMAGE}}},
            "/animations/{imageId}/failures": {"parameters": [ID], "get": {
                "summary": "What failed for good",
                "description": "Public, but the error of a send-email failure (it may name addresses) only with the token",
                "parameters": [LIMIT], "responses": {**_ok("failures"), **ERRORS}}},
            "/runs/{runId}": {"parameters": [{"name": "runId", "in": "path", "required": True, "schema": {"type": "string"}}], "get": {
                "summary": "A run's timeline: each message in and out (whole, addresses and bodies too), when, how long between",
                "security": AUTH, "responses": {**_ok("events"), **ERRORS, **DENIED}}},
            "/animations/{imageId}/failures/redrive": {"parameters": [ID], "post": {
                "summary": "Each failure whose request was kept: that request to its worker again, the failure forgotten",
                "security": AUTH, "responses": {**_ok("how many were redriven and kept", status="202"), **ERRORS, **DENIED}}},
            "/failures": {"get": {"summary": "The mediator's dead letters (whole messages), with their errors",
                                  "security": AUTH, "responses": {**_ok("dead letters"), **DENIED}}},
            "/failures/redrive": {"post": {"summary": "Every dead letter back to the mediator's queue", "security": AUTH,
                                           "responses": {**_ok("how many", status="202"), **DENIED}}},
        },
    }
