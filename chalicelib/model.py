"""Typed JSON objects: msgspec Structs, strict, camelCase, with errors that name every bad field.

msgspec checks an object in one pass and stops at its first problem. When an object is not valid,
`Record.from_dict` looks at each of its fields on its own, so that the error (`Invalid`) names every
one that is wrong, each by its JSON path (`locations.1.Key`) and in words ("must be an integer, not
a string"). Constructing a record in code checks nothing (msgspec's constructors do not): what
leaves the process is checked with `checked()` first.

Strict: JSON types as they are (true is not 1, "800" is not 800, 800.0 is not 800).
"""

from __future__ import annotations

import functools
import re
import types
from typing import Annotated, Any, Literal, Self, Union, get_args, get_origin

import msgspec


def whole(pattern: str, says: str = "") -> str:
    """A regular expression that must match the whole text. `$` alone also matches before a final
    line break in Python (not in JSON Schema's dialect); `$(?!\\n)` means the end in both.

    `says` is what a text that does not match is told ("must not contain line breaks")."""
    regex = f"^{pattern}$(?!\\n)"
    if says:
        _SAID[regex] = says
    return regex


_SAID: dict[str, str] = {}


def wrong(path: str, text: str) -> ValueError:
    """An error for a record's check across its fields (in `__post_init__`), naming the field at
    `path` as msgspec names the fields it checks itself."""
    return ValueError(f"{text} - at `$.{path}`")


class Invalid(ValueError):
    """An object that is not a valid record: each problem as (its JSON path, what is wrong)."""

    def __init__(self, problems: list[tuple[str, str]], title: str = ""):
        self.problems = problems
        self.title = title  # the record's name
        super().__init__(self.describe())

    def describe(self) -> str:
        """One line naming each bad field by its JSON path and saying what is wrong."""
        return "; ".join(f"'{path}' {text}" if path else text for path, text in self.problems)

    @property
    def field(self) -> str | None:
        """The path of the first problem (None: the object as a whole)."""
        return self.problems[0][0] or None if self.problems else None


class Record(msgspec.Struct, frozen=True, kw_only=True, rename="camel", forbid_unknown_fields=True):
    """A JSON object with camelCase keys; fields by their Python names in code.

    Subclasses say `frozen=True, kw_only=True` again: msgspec inherits them, mypy does not see it."""

    @classmethod
    def from_dict(cls, data: Any) -> Self:
        """`data` (decoded JSON) as this record; Invalid naming every bad field."""
        not_text = unpaired(data)
        if not_text:
            raise Invalid(not_text, cls.__name__)
        return cls._converted(data)

    @classmethod
    def _converted(cls, data: Any) -> Self:
        """`data`, its text known to be Unicode, as this record."""
        try:
            return msgspec.convert(data, cls)
        except msgspec.ValidationError as exc:
            raise Invalid(problems(cls, data, str(exc)), cls.__name__) from None

    @classmethod
    def across(cls, data: dict[str, Any]) -> list[tuple[str, str]]:
        """The problems of a check across fields (a record's `__post_init__` makes it too), found in
        the raw object, so that they are named beside the problems of single fields."""
        return []

    def to_dict(self) -> dict[str, Any]:
        """The JSON object, camelCase keys. A None is left out where it is the default (nothing set),
        and kept where it is a choice (gifLastDelay: null), so the object reads back the same."""
        data: dict[str, Any] = msgspec.to_builtins(self)
        for key in _unset_when_none(type(self)):
            if data[key] is None:
                del data[key]
        return data

    def replace(self, **changes: Any) -> Self:
        """A copy with these fields (by their Python names) changed; not checked."""
        return msgspec.structs.replace(self, **changes)

    def checked(self) -> Self:
        """This record, checked as `from_dict` checks what it reads (Invalid if it is not valid)."""
        type(self).from_dict(msgspec.to_builtins(self))
        return self


def keys(record: type[msgspec.Struct]) -> tuple[str, ...]:
    """The JSON keys of a record's fields."""
    return record.__struct_encode_fields__


def names(record: type[msgspec.Struct]) -> tuple[str, ...]:
    """The Python names of a record's fields."""
    return record.__struct_fields__


@functools.cache
def _unset_when_none(record: type[msgspec.Struct]) -> tuple[str, ...]:
    return tuple(f.encode_name for f in msgspec.structs.fields(record) if f.default is None)


# Every problem, in words -------------------------------------------------------------------------


def problems(record: type[msgspec.Struct], data: Any, first: str) -> list[tuple[str, str]]:
    """What is wrong with `data` as a `record`, field by field (msgspec's `first` problem when it is
    no field's: the object is no object, or a check across fields failed)."""
    if not isinstance(data, dict):
        return [located("", first)]
    found: list[tuple[str, str]] = []
    fields = msgspec.structs.fields(record)
    for field in fields:
        if field.encode_name not in data:
            if field.required:
                found.append((field.encode_name, "is required"))
            continue
        found += _value_problems(field.encode_name, data[field.encode_name], field.type)
    if record.__struct_config__.forbid_unknown_fields:
        known = {field.encode_name for field in fields}
        found += [(str(key), "is not a known key") for key in data if key not in known]
    if issubclass(record, Record):
        found += record.across(data)
    return found or [located("", first)]


UNPAIRED = "holds an unpaired surrogate (\\ud800-\\udfff), which is not a character"


def unpaired(data: Any) -> list[tuple[str, str]]:
    """The fields of `data` whose text (a key or a value, at any depth) is not Unicode text: JSON
    may escape half a surrogate pair (\\ud800), and no store or sender takes it."""
    try:
        msgspec.json.encode(data)
    except UnicodeEncodeError:
        pass
    except (TypeError, ValueError, OverflowError):  # not JSON-like: convert says what is wrong
        return []
    else:
        return []
    if not isinstance(data, dict):
        return [("", UNPAIRED)]
    found = []
    for key, value in data.items():
        try:
            msgspec.json.encode({key: value})
        except UnicodeEncodeError:
            found.append((key if _encodes(key) else "", UNPAIRED))
        except (TypeError, ValueError, OverflowError):
            pass
    return found or [("", UNPAIRED)]


def _encodes(text: Any) -> bool:
    try:
        str(text).encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _value_problems(path: str, value: Any, kind: Any) -> list[tuple[str, str]]:
    """What is wrong with `value` as a `kind`, at `path`: within a record or a list of records,
    each of their problems; else the first."""
    try:
        msgspec.convert(value, kind)
    except (msgspec.ValidationError, UnicodeError) as exc:
        inner = _plain(kind)
        if isinstance(inner, type) and issubclass(inner, msgspec.Struct) and isinstance(value, dict):
            return [(f"{path}.{at}" if at else path, text) for at, text in problems(inner, value, str(exc))]
        item = get_args(inner)[0] if get_origin(inner) is list and get_args(inner) else None
        if item is not None and isinstance(value, list) and not _length_problem(str(exc)):
            return [
                problem for i, element in enumerate(value) for problem in _value_problems(f"{path}.{i}", element, item)
            ]
        return [located(path, str(exc), kind)]
    return []


def _plain(kind: Any) -> Any:
    """A type without its constraints (Annotated) and, if optional, without None."""
    if get_origin(kind) is Annotated:
        return _plain(get_args(kind)[0])
    if get_origin(kind) in (Union, types.UnionType):
        rest = [arg for arg in get_args(kind) if arg is not type(None)]
        return _plain(rest[0]) if len(rest) == 1 else kind
    return kind


def _length_problem(error: str) -> bool:
    return bool(re.match(r"Expected `array` of length", error))


_AT = re.compile(r"^(?P<text>.*?)(?: - at `\$(?P<path>[^`]*)`)?$", re.DOTALL)
_KEY = re.compile(r"^Object (?P<what>missing required|contains unknown) field `(?P<key>.*)`$", re.DOTALL)
_TYPES = {
    "int": "an integer",
    "float": "a number",
    "str": "a string",
    "bool": "a boolean",
    "array": "an array",
    "object": "an object",
    "null": "null",
}
_END = re.compile(r"\$\(\?!\\+n\)")  # whole()'s end, as msgspec shows it
_BOUNDS = {">=": "at least", "<=": "at most", ">": "greater than", "<": "less than"}


def located(prefix: str, error: str, kind: Any = None) -> tuple[str, str]:
    """A msgspec error ("Expected `int`, got `str` - at `$.locations[1].width`") of the value at
    `prefix`, as (its path, what is wrong in words)."""
    match = _AT.match(error)
    assert match is not None  # the pattern matches any text
    text, inner = match["text"], match["path"] or ""
    path = ".".join(part for part in [prefix, *re.findall(r"[^.\[\]]+", inner)] if part)
    key = _KEY.match(text)
    if key:
        path = ".".join(part for part in (path, key["key"]) if part)
        return path, "is required" if key["what"] == "missing required" else "is not a known key"
    return path, in_words(text, kind if not inner else None)


def in_words(text: str, kind: Any = None) -> str:
    """msgspec's description of a problem, said plainly ("must be at least 1")."""
    if match := re.fullmatch(r"Expected `([\w |]+)`, got `(\w+)`", text):
        wanted = " or ".join(_TYPES.get(name, name) for name in match[1].split(" | "))
        return f"must be {wanted}, not {_TYPES.get(match[2], match[2])}"
    if re.fullmatch(r"Expected `(?:str|array|object)` of length >= 1", text):
        return "must not be empty"
    if match := re.fullmatch(r"Expected `(array|object)` of length (>=|<=) (\d+)", text):
        return f"must have {_BOUNDS[match[2]]} {match[3]} {'items' if match[1] == 'array' else 'entries'}"
    if match := re.fullmatch(r"Expected `str` of length (>=|<=) (\d+)", text):
        return f"must have {_BOUNDS[match[1]]} {match[2]} characters"
    if match := re.fullmatch(r"Expected `(?:int|float)` (>=|<=|>|<) (\S+)", text):
        return f"must be {_BOUNDS[match[1]]} {match[2].removesuffix('.0')}"
    if match := re.fullmatch(r"Expected `str` matching regex (['\"])(.*)\1", text, re.DOTALL):
        said = {shown: says for regex, says in _SAID.items() for shown in (regex, repr(regex)[1:-1])}
        return said.get(match[2]) or f"must match {_END.sub('$', match[2])}"
    if text.startswith("Invalid enum value"):
        options = _options(kind)
        return f"must be one of {', '.join(map(repr, options))}" if options else "is not one of the values allowed"
    return text[:1].lower() + text[1:]


def for_schema(schema: Any) -> Any:
    """A JSON Schema of records, its patterns in JSON Schema's own terms: whole()'s `$(?!\\n)`
    is `$` there (which other regex engines, RE2 and Rust's, read without a look-ahead)."""
    if isinstance(schema, dict):
        return {
            key: _END.sub("$", value) if key == "pattern" and isinstance(value, str) else for_schema(value)
            for key, value in schema.items()
        }
    if isinstance(schema, list):
        return [for_schema(value) for value in schema]
    return schema


def _options(kind: Any) -> tuple[Any, ...]:
    """The values a Literal type allows (also inside Annotated or an optional)."""
    origin = get_origin(kind)
    if origin is Literal:
        return get_args(kind)
    if origin is Annotated:
        return _options(get_args(kind)[0])
    if origin in (Union, types.UnionType):
        return tuple(value for arg in get_args(kind) for value in _options(arg))
    return ()
