"""A plain-text rendering of an HTML email body, for the text/plain alternative.

Any string in, text out: what a browser would show of it, with no tag, comment,
declaration or character reference of the input left over, however malformed the input
(unclosed tags and comments, stray `<`, `>` inside quoted attributes, broken entities).
Text the HTML itself spells with references (`&lt;b&gt;`) is text, and comes out as
written (`<b>`). Links keep their http(s) URLs, as `text <url>`.

The input is cut where HTML5's tokenizer cuts it (WHATWG HTML, "Tokenization"), for the
states that decide where markup starts and ends: `<` opens markup only before a letter,
`!`, `/` or `?`; a tag ends at the first `>` outside a quoted attribute value; a
comment at `-->` or `--!>` (`<!-->` is a whole one); a declaration, a processing
instruction and other bogus comments at the first `>`; the contents of script, style,
title, textarea, xmp, iframe, noembed and noframes at their end tag. Markup that the input
ends inside of is dropped, as HTML5 drops it. Two departures, both toward less markup:
`<![CDATA[` runs to `]]>` (as in foreign content), and a `</` that ends the input is
dropped (HTML5 shows it).

Not html.parser: HTMLParser hands unfinished markup at the end of the input back as
text (an unclosed `<b` or `<!--` arrived in the email as such), and how it recovers from
malformed markup has changed between Python patch releases, so between this machine and
Lambda's runtime. This is the standard library only (re, html.unescape), the same
everywhere.
"""

from __future__ import annotations

import re
from html import unescape

_BLOCKS = {"p", "div", "br", "tr", "li", "h1", "h2", "h3", "h4", "h5", "h6", "table", "ul", "ol", "hr"}
# Elements whose contents are raw text up to their end tag (HTML5's RAWTEXT and RCDATA
# elements): none of it is shown (a title is not, in the body; a textarea's is a form's).
_RAW = {"script", "style", "title", "textarea", "xmp", "iframe", "noembed", "noframes"}
_RAW_END = {name: re.compile(rf"</{name}(?=[\t\n\f\r />])", re.IGNORECASE) for name in _RAW}

_SPACES = re.compile(r"[\t\n\f\r ]*")
_NAME_END = re.compile(r"[\t\n\f\r />]")
_BEFORE_ATTRIBUTE = re.compile(r"[\t\n\f\r /]*")  # a `/` that is not `/>` is ignored there too
_ATTRIBUTE_NAME = re.compile(r"[^\t\n\f\r />][^\t\n\f\r /=>]*")  # it may start with `=`
_UNQUOTED = re.compile(r"[^\t\n\f\r >]*")
_COMMENT_END = re.compile(r"--!?>")
_LINK = re.compile(r"https?://", re.IGNORECASE)
_URL_UNSAFE = set('<>"`{}|\\^')
_C0_AND_SPACE = "".join(map(chr, range(0x21)))


def html_to_text(html: str) -> str:
    renderer = _Renderer()
    renderer.feed(html)
    text = "".join(renderer.parts)
    lines = (re.sub(r"[ \t\r\f\v]+", " ", line).strip() for line in text.split("\n"))
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip() + "\n"


class _Renderer:
    def __init__(self) -> None:
        self.parts: list[str] = []
        self.link: str | None = None  # the URL of the open <a>, if it has one

    # What each token becomes ---------------------------------------------------------

    def text(self, raw: str) -> None:
        self.parts.append(unescape(raw))

    def start_tag(self, tag: str, attributes: dict[str, str]) -> None:
        if tag in _BLOCKS:
            self.parts.append("\n")
        if tag == "li":
            self.parts.append("- ")
        elif tag == "a":
            self.end_link()  # an <a> inside an <a> closes the first, as HTML5 does
            self.link = _url(attributes.get("href", ""))
        elif tag == "img" and attributes.get("alt"):
            self.parts.append(f"[{attributes['alt']}]")

    def end_tag(self, tag: str) -> None:
        if tag == "a":
            self.end_link()
        elif tag in _BLOCKS:
            self.parts.append("\n")

    def end_link(self) -> None:
        if self.link:
            self.parts.append(f" <{self.link}>")
        self.link = None

    # Tokenizing --------------------------------------------------------------------------

    def feed(self, html: str) -> None:
        n, pos = len(html), 0
        while pos < n:
            lt = html.find("<", pos)
            if lt < 0:
                self.text(html[pos:])
                break
            if lt > pos:
                self.text(html[pos:lt])
            pos = self.markup(html, lt)
        self.end_link()

    def markup(self, html: str, lt: int) -> int:
        """The markup at html[lt] (a `<`), handled; returns where the text goes on."""
        after = html[lt + 1 : lt + 2]
        if _is_letter(after):
            tag = _tag(html, lt + 1)
            if tag is None:
                return len(html)  # the input ends inside the tag: dropped
            end, name, attributes = tag
            self.start_tag(name, attributes)
            return self.raw_text(html, end, name) if name in _RAW else end
        if after == "/":
            if _is_letter(html[lt + 2 : lt + 3]):
                tag = _tag(html, lt + 2)
                if tag is None:
                    return len(html)
                self.end_tag(tag[1])
                return tag[0]
            return _through(html, ">", lt + 2)  # `</>`, `</ x>`: a bogus comment; `</` at the end
        if after == "!":
            if html.startswith("--", lt + 2):
                return _comment(html, lt + 4)
            if html.startswith("[CDATA[", lt + 2):
                end = html.find("]]>", lt + 9)
                return end + 3 if end >= 0 else _through(html, ">", lt + 9)
            return _through(html, ">", lt + 2)  # a doctype or a bogus comment
        if after == "?":
            return _through(html, ">", lt + 2)  # a processing instruction: a bogus comment
        self.text("<")  # before anything else, `<` is text
        return lt + 1

    def raw_text(self, html: str, pos: int, name: str) -> int:
        """Skip the contents of a raw-text element, through its end tag."""
        close = _RAW_END[name].search(html, pos)
        if close is None:
            return len(html)  # it runs to the end of the input
        tag = _tag(html, close.start() + 2)
        if tag is None:
            return len(html)
        self.end_tag(name)
        return tag[0]


def _is_letter(char: str) -> bool:
    return len(char) == 1 and char.isascii() and char.isalpha()


def _through(html: str, end: str, pos: int) -> int:
    """Just past the first `end` from `pos`, or the end of the input."""
    found = html.find(end, pos)
    return len(html) if found < 0 else found + len(end)


def _comment(html: str, pos: int) -> int:
    """Past a comment whose `<!--` ends at `pos`."""
    if html.startswith(">", pos):
        return pos + 1  # <!-->
    if html.startswith("->", pos):
        return pos + 2  # <!--->
    found = _COMMENT_END.search(html, pos)
    return len(html) if found is None else found.end()


def _match(pattern: re.Pattern[str], text: str, pos: int) -> re.Match[str]:
    """`pattern` at `pos`, for patterns that match the empty string too (so always match)."""
    found = pattern.match(text, pos)
    assert found is not None
    return found


def _tag(html: str, pos: int) -> tuple[int, str, dict[str, str]] | None:
    """A tag whose name starts at `pos`: (just past its `>`, its name, its attributes,
    first of each name, values unescaped), or None if the input ends inside it."""
    n = len(html)
    name_end = _NAME_END.search(html, pos)
    i = n if name_end is None else name_end.start()
    name = html[pos:i].lower()
    attributes: dict[str, str] = {}
    while True:
        i = _match(_BEFORE_ATTRIBUTE, html, i).end()
        if i >= n:
            return None
        if html[i] == ">":
            return i + 1, name, attributes
        attribute = _match(_ATTRIBUTE_NAME, html, i)
        key, i = attribute.group().lower(), attribute.end()
        value = ""
        j = _match(_SPACES, html, i).end()
        if j < n and html[j] == "=":
            j = _match(_SPACES, html, j + 1).end()
            if j >= n:
                return None
            if html[j] in "\"'":
                close = html.find(html[j], j + 1)
                if close < 0:
                    return None
                value, i = html[j + 1 : close], close + 1
            else:
                unquoted = _match(_UNQUOTED, html, j)
                value, i = unquoted.group(), unquoted.end()
        else:
            i = j
        attributes.setdefault(key, unescape(value))


def _url(href: str) -> str | None:
    """An http(s) link's URL, for plain text: None for any other (relative, mailto:,
    javascript:...); characters that would end or break `<url>` percent-encoded."""
    href = re.sub(r"[\t\n\r]", "", href.strip(_C0_AND_SPACE))  # as URL parsers do
    if not _LINK.match(href):
        return None
    return "".join(
        "".join(f"%{byte:02X}" for byte in char.encode())
        if char in _URL_UNSAFE or not char.isprintable() or char == " "
        else char
        for char in href
    )
