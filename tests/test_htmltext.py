"""The plain-text alternative of an HTML email: no markup of the body survives, whatever
the body, and text passes through with its words."""

from __future__ import annotations

import html
import re
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chalicelib.htmltext import html_to_text
from tests.conftest import examples

# Markup, as the output must never hold it:
# - `<` before an ASCII letter, `!`, `/` or `?`: the start of a tag, an end tag, a comment,
#   a declaration, CDATA or a processing instruction (HTML5 opens markup at `<` there and
#   nowhere else), unless it is a link's `<http(s)://...>`, which the renderer writes;
# - a character reference that would still decode (`&amp;`, `&#233;`, `&eacute`).
# Text that the HTML states with references (`&lt;b&gt;`) is text, not markup, and comes
# out as written: the generated documents below state no `<` and no `&` that way, so in
# their output any of the above could only be markup of the input that survived.
MARKUP = re.compile(r"<(?!(?i:https?)://[^\s<>]*>)[A-Za-z!/?]")
REFERENCE = re.compile(r"&(?:#[0-9]+|#[xX][0-9a-fA-F]+|[A-Za-z][A-Za-z0-9]*);?")


def markup_in(text: str) -> list[str]:
    found = [m.group() for m in MARKUP.finditer(text)]
    return found + [m.group() for m in REFERENCE.finditer(text) if html.unescape(m.group()) != m.group()]


@pytest.mark.parametrize(
    "body, text",
    [
        # unfinished markup at the end of the body: dropped, as HTML5 drops it
        ("<p>Temps <b", "Temps\n"),
        ('<p>Temps</p><div class="a', "Temps\n"),
        ("<p>Temps</p><a href='https://x.example/a.gif", "Temps\n"),
        ("Temps <!-- unclosed comment <b>", "Temps\n"),
        ("Temps <![CDATA[ never closed", "Temps\n"),
        ("Temps <!DOCTYPE", "Temps\n"),
        ("Temps <?xml", "Temps\n"),
        ("Temps </", "Temps\n"),
        ("Temps </di", "Temps\n"),
        ("Temps <script>var a = '<b>'", "Temps\n"),
        # a stray `<` before anything but a letter, `!`, `/` or `?` is text
        ("a < b, 1<2, <3, <>, <= and a<", "a < b, 1<2, <3, <>, <= and a<\n"),
        ("a < /p> b", "a < /p> b\n"),
        # ... and before a letter it opens a tag, to the next `>`, as a browser reads it
        ("if a<b then c>d", "if ad\n"),
        # comments, CDATA, declarations, processing instructions, bogus comments
        ("a<!-- <b>x</b> -->b", "ab\n"),
        ("a<!---->b<!-->c<!--->d", "abcd\n"),
        ("a<!-- x --!>b", "ab\n"),
        ("a<![CDATA[<b>x</b> > y]]>b", "ab\n"),
        ('<!DOCTYPE html><!doctype html PUBLIC "-//W3C//DTD XHTML 1.0//EN" "x>y">a', 'y">a\n'),
        ('<?xml version="1.0"?>a<?php echo 1 ?>b', "ab\n"),
        ("a</>b</ x>c</3>d<!x>e", "abcde\n"),
        # script, style and the like: their contents are not shown, markup and all
        ("<script>if (a<b && c) { x = '</p>' }</script>ok", "ok\n"),
        ("<STYLE>p > a { color: red }</Style >ok", "ok\n"),
        ("<script type=x>a</script foo='>'>ok", "ok\n"),
        ("<title>T</title><textarea><b>no</b></textarea>ok", "ok\n"),
        # attributes with `>` and `<` inside quotes; unquoted, repeated, odd names
        ("<div title=\"a>b\" data-x='<p>'>in</div>", "in\n"),
        ('<p class=a>b id="c">text', 'b id="c">text\n'),
        ('<img alt="a > b" src=x.png>', "[a > b]\n"),
        ('<img alt=first alt=second =odd "q=1>', "[first]\n"),
        ("<p <b>c</b>", "c\n"),
        ("<scr<script>ipt>", "ipt>\n"),
        # references: decoded; broken ones are text, as a browser shows them
        ("a &amp; b &eacute; &#233; &#xE9; &copy 2024 &hellip;", "a & b é é é © 2024 …\n"),
        ("&bogus; &#xZZ; &#; & &&", "&bogus; &#xZZ; &#; & &&\n"),
        ("&lt;b&gt; is how you write <b>bold</b>", "<b> is how you write bold\n"),
        ("a &amp;amp; b", "a &amp; b\n"),
        # links: http(s) URLs as text, others not; nothing in a URL can end `<url>`
        ("<a href='https://x.example/a.gif'>GIF</a>", "GIF <https://x.example/a.gif>\n"),
        ('<A HREF="https://x.example/?a=1&amp;b=2">q</A>', "q <https://x.example/?a=1&b=2>\n"),
        ("<a href=' https://x.example/a b<c>\"d|{} '>e</a>", "e <https://x.example/a%20b%3Cc%3E%22d%7C%7B%7D>\n"),
        ('<a href="https://x.example/\n\tz">f</a>', "f <https://x.example/z>\n"),
        ("<a href='javascript:alert(1)'>j</a> <a href=t.jpg>r</a> <a href='mailto:a@b'>m</a>", "j r m\n"),
        (
            "<a href='https://x.example/1'>one<a href='https://x.example/2'>two</a>",
            "one <https://x.example/1>two <https://x.example/2>\n",
        ),
        ("<a href='https://x.example/open'>never closed", "never closed <https://x.example/open>\n"),
        # blocks, as before
        ("a<br/>b</br>c<hr>d", "a\nb\nc\nd\n"),
        ("", "\n"),
    ],
)
def test_malformed_bodies(body, text):
    assert html_to_text(body) == text


def test_the_email_the_mediator_writes():
    from chalicelib.mediator.decide import Links, email_html
    from chalicelib.messages import DidCreateGif, Location

    gif = DidCreateGif(
        image_id="temps", valid_time=1700000000, location=Location(bucket="gifs-bucket", key="temps/1700000000.gif")
    )
    gif_url = "https://api.example/animations/temps/gifs/1700000000/image?a=1&b=2"
    thumb_url = "https://api.example/animations/temps/frames/1700000000/thumbnails/200x150-cover"
    text = html_to_text(email_html(gif, Links(gif_url, [(1700000000, thumb_url)])))
    assert markup_in(text) == []
    assert f"<{gif_url}>" in text and f"<{thumb_url}>" in text
    assert "temps, to 2023-11-14 22:13 UTC" in text


@pytest.mark.parametrize(
    "body",
    [
        "<" * 200_000,
        "<a " * 70_000,
        "<!--" * 50_000,
        "</" * 100_000,
        "<a href='" * 30_000,
        "<![CDATA[" * 25_000,
        "<script>" * 25_000,
        "&" * 200_000,
        "<p>" * 70_000,
        "<?" * 100_000,
    ],
)
def test_hostile_bodies_take_linear_time(body):
    started = time.perf_counter()
    html_to_text(body)
    assert time.perf_counter() - started < 2.0


# Generated documents -------------------------------------------------------------------

# Text that states no markup: no `<` and no `&` (they come as STRAY pieces, each followed
# by a space or ending what it starts, so no neighbour can turn them into markup).
plain = st.text(st.characters(blacklist_characters="<&", blacklist_categories=("Cs",)), max_size=12)
safe_value = st.text(st.characters(blacklist_characters="<&\"'", blacklist_categories=("Cs",)), max_size=8)
any_value = st.text(st.characters(blacklist_categories=("Cs",)), max_size=8)

STRAY = ["a < b ", "< /p> ", "1<2 ", "<3 ", "<> ", "<= ", "<<> ", "& ", "&& ", "&bogus; ", "&#; ", "&#xZZ; ", "&#x; "]
REFERENCES = [
    "&eacute;",
    "&#233;",
    "&#xE9;",
    "&nbsp;",
    "&quot;",
    "&gt;",
    "&copy",
    "&hellip;",
    "&#x1F600;",
    "&NotEqualTilde;",
    "&#0;",
    "&#x110000;",
    "&#128;",
    "&apos;",
]
FIXED_MARKUP = [
    "<!---->",
    "<!-->",
    "<!--->",
    "<!-- a -- b --!>",
    "<!--<!-- nested -->",
    "<!-- <b>hidden</b> -->",
    "<![CDATA[<b>x</b>]]>",
    "<!DOCTYPE html>",
    '<!doctype html PUBLIC "-//W3C//DTD" "x">',
    "<!ELEMENT x>",
    "<!>",
    '<?xml version="1.0"?>',
    "<?php echo '<b>' ?>",
    "</>",
    "</ x>",
    "</3>",
    "<!x>",
    "<br/>",
    "</br>",
    "<hr>",
    "<scr<script>ipt>",
    "<p <b>",
    '<a href="https://x.example/a?b=1&amp;c=2">',
    "<a href='HTTP://X.EXAMPLE/<b>'>",
    "<a href=javascript:alert(1)>",
    "<a href=t.jpg>",
    "<a href=' https://x.example/sp ace '>",
    "<a href='mailto:a@b'>",
    "<a href='https://x.example/\"quoted\"'>",
    "</a>",
]
# Unfinished markup can only end a document.
UNFINISHED = [
    "<",
    "<b",
    '<a href="x',
    "<p class='a>b",
    "</",
    "</di",
    "<!--",
    "<!-- unclosed <b>",
    "<![CDATA[ x",
    "<!DOCTYPE",
    "<?xml",
    "&",
    "&am",
    "<script>x",
    "<style>p{}",
    '<img alt="unfinished',
    "<a href='https://x",
]


@st.composite
def tags(draw) -> str:
    name = draw(st.sampled_from(["p", "div", "b", "a", "img", "span", "li", "br", "table", "td", "x-y", "h1", "svg"]))
    name = "".join(c.upper() if draw(st.booleans()) else c for c in name)
    end = draw(st.booleans())
    attributes = ""
    for _ in range(draw(st.integers(0, 3))):
        key = draw(st.sampled_from(["alt", "title", "class", "data-x", "style", "=odd", 'x"y']))
        if key == "alt":
            value = draw(safe_value)
            quote = draw(st.sampled_from(['"', "'"]))
        else:
            value = draw(any_value)
            quote = draw(st.sampled_from(['"', "'", ""]))
        if quote:
            value = value.replace(quote, "")
        else:
            value = re.sub(r"[\t\n\f\r >\"']", "", value) or "v"
        gap = draw(st.sampled_from([" ", "\n", "  ", "/"]))
        attributes += f"{gap}{key}={quote}{value}{quote}" if draw(st.booleans()) else f"{gap}{key}"
    closing = draw(st.sampled_from([">", "/>", " >"]))
    return f"</{name}{attributes}{closing}" if end else f"<{name}{attributes}{closing}"


@st.composite
def raw_elements(draw) -> str:
    name = draw(st.sampled_from(["script", "style", "title", "textarea", "xmp", "iframe", "noembed", "noframes"]))
    content = draw(
        st.lists(
            st.sampled_from(["<b>", "</p>", "<!--", "-->", "&amp;", "if (a<b)", "</scr", "x"]) | any_value, max_size=4
        )
    )
    content = "".join(content)
    if f"</{name}" in content.lower():
        content = ""
    return f"<{name}>{content}</{name.upper() if draw(st.booleans()) else name}>"


@st.composite
def comments_and_cdata(draw) -> str:
    body = draw(plain).replace("-", "").replace("]", "")
    return draw(st.sampled_from([f"<!--{body}-->", f"<![CDATA[{body}]]>", f"<?{body.replace('>', '')}>"]))


pieces = st.one_of(
    plain,
    plain,
    st.sampled_from(STRAY),
    st.sampled_from(REFERENCES),
    st.sampled_from(FIXED_MARKUP),
    tags(),
    tags(),
    raw_elements(),
    comments_and_cdata(),
)
documents = st.tuples(st.lists(pieces, max_size=30), st.sampled_from(["", *UNFINISHED])).map(
    lambda d: "".join(d[0]) + d[1]
)


@settings(max_examples=examples(600), deadline=None)
@given(documents)
def test_no_markup_survives(body):
    text = html_to_text(body)
    assert markup_in(text) == []
    assert text.endswith("\n")


# Plain text without markup: words (no `<`, no `&`, or those alone, with spaces around).
words = st.lists(
    st.text(st.characters(blacklist_characters="<&", blacklist_categories=("Cs", "Cc", "Zs", "Zl", "Zp")), min_size=1)
    | st.sampled_from(["<", "&", "<3", "->", "<=", "a<", "&&", "<>", "x>y"]),
    max_size=30,
)


@settings(max_examples=examples(300), deadline=None)
@given(words, st.data())
def test_text_without_markup_keeps_its_words(words, data):
    gaps = data.draw(
        st.lists(st.sampled_from([" ", "\n", "\t", "  ", "\r\n", "\n\n\n"]), min_size=len(words), max_size=len(words))
    )
    body = "".join(word + gap for word, gap in zip(words, gaps))
    assert html_to_text(body).split() == words


@settings(max_examples=examples(300), deadline=None)
@given(st.text(st.sampled_from("<>/!?-[]&;#=\"' abpx\n"), max_size=60) | st.text(max_size=60))
def test_any_string_is_rendered(body):
    text = html_to_text(body)
    assert text.endswith("\n") and html_to_text(body) == text
