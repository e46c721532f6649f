"""The docs name only what exists: README.md and docs/*.md against the repository.

- every `make X` they name (in a code span or a fenced code block) is a target of the Makefile;
- every path they name exists: a code span that is a path (one token with a "/" or a file
  extension of the repository's kinds) from the repository's root, a bare file name somewhere
  in it; a link's target from the file that links (and its #anchor among the target's headings);
  the README's layout tree entry by entry. Not paths: URLs, routes and SSM names (from "/"),
  patterns with placeholders (`{imageId}/{validTime}.gif`, `.chalice/policy-{stage}-{function}.json`,
  `did-*`), ARNs and actions (with ":"), media types, kinds of file (`.py`), places outside the
  repository (`../shared/benchdata`), and what a command writes (GENERATED);
- every file of docs/ is linked from the README, and the README has at most 250 lines.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
DOCS = sorted((ROOT / "docs").glob("*.md"))
README_LINES = 250

# What commands write (each ignored by .gitignore): named in the docs, absent from a fresh clone.
GENERATED = (
    ".venv/",  # make .venv/.installed, make test, make demo
    "demo-output/",  # make demo
    "test-output/",  # make test
    "bench/out/",  # make bench
    "build/",  # make package, make deploy (the ffmpeg layer's zip)
    ".chalice/deployments/",  # make bytecode, chalice deploy
    ".chalice/deployed/",  # chalice deploy
)
EXTENSIONS = (".py", ".md", ".yaml", ".yml", ".json", ".txt", ".in", ".html", ".toml", ".cfg", ".ini")
MEDIA_TYPES = ("application/", "image/", "video/", "text/", "audio/", "multipart/")
SKIPPED_DIRS = {".git", ".venv", "__pycache__", ".pytest_cache", ".hypothesis", "node_modules", *GENERATED}

FENCE = re.compile(r"^(```|~~~)(.*)$")
CODE_SPAN = re.compile(r"(`+)(.+?)\1", re.DOTALL)
LINK = re.compile(r"\]\(([^()\s]+)(?:\s+\"[^\"]*\")?\)")
MAKE = re.compile(r"(?:^|[\s;&|(`$])make\s+((?:[A-Z_]+=\S*\s+)*)([a-z][\w.-]*)")
HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")


def docs() -> list[Path]:
    return [README, *DOCS]


def split(text: str) -> tuple[list[str], list[tuple[str, list[str]]]]:
    """A Markdown text's prose lines (fenced blocks left out) and its fenced blocks (info string, lines)."""
    prose: list[str] = []
    blocks: list[tuple[str, list[str]]] = []
    fence: str | None = None
    for line in text.splitlines():
        found = FENCE.match(line.strip())
        if fence is None and found:
            fence, info = found.group(1), found.group(2).strip()
            blocks.append((info, []))
        elif fence is not None and line.strip().startswith(fence):
            fence = None
        elif fence is not None:
            blocks[-1][1].append(line)
        else:
            prose.append(line)
    return prose, blocks


def code_spans(lines: list[str]) -> list[str]:
    """The code spans of prose lines, a span broken over lines read as one (within a paragraph)."""
    paragraphs = "\n".join(lines).split("\n\n")
    return [" ".join(m.group(2).split()) for text in paragraphs for m in CODE_SPAN.finditer(text)]


def make_targets_named(text: str) -> set[str]:
    """The targets of every `make X` in a code span or a fenced block (a command, not the verb)."""
    prose, blocks = split(text)
    commands = code_spans(prose) + [line for _, lines in blocks for line in lines]
    return {match.group(2) for command in commands for match in MAKE.finditer(command)}


def makefile_targets() -> set[str]:
    targets = set()
    for line in (ROOT / "Makefile").read_text().splitlines():
        found = re.match(r"^([A-Za-z0-9_.\-/$()]+(?:\s+[A-Za-z0-9_.\-/$()]+)*)\s*:(?!=)", line)
        if found and not line.startswith((".PHONY", "\t")):
            targets.update(found.group(1).split())
    return targets | {".venv/.installed"}  # $(STAMP), as the Makefile names it


def is_path(text: str) -> bool:
    """Whether a code span names a file or folder of the repository (see the module's doc)."""
    if not text or any(c.isspace() for c in text) or "://" in text:
        return False
    if any(c in text for c in "{}<>*$:=?@#|,;()[]'\"\\…") or text.startswith(("/", "-", "~")):
        return False  # a pattern, a route or parameter name, an ARN or action, an option, a query
    if text.startswith(MEDIA_TYPES) or text.startswith("../") or text in EXTENSIONS:
        return False  # a media type, a place outside the repository, a kind of file (`.py`)
    return "/" in text or text.endswith(EXTENSIONS)


def generated(path: str) -> bool:
    return any(path == g.rstrip("/") or path.startswith(g) for g in GENERATED)


def names_in_repository() -> set[str]:
    """Every file and folder name in the repository (what a bare file name may be)."""
    found: set[str] = set()

    def walk(folder: Path) -> None:
        for entry in folder.iterdir():
            if entry.name in SKIPPED_DIRS or f"{entry.relative_to(ROOT).as_posix()}/" in SKIPPED_DIRS:
                continue
            found.add(entry.name)
            if entry.is_dir():
                walk(entry)

    walk(ROOT)
    return found


def missing_paths(doc: Path, text: str, names: set[str]) -> list[str]:
    """The code-span paths of a doc that do not exist (from the root; a bare name anywhere)."""
    prose, _ = split(text)
    missing = []
    for span in code_spans(prose):
        if not is_path(span) or generated(span):
            continue
        if "/" in span.rstrip("/"):
            exists = (ROOT / span).exists()
        else:
            exists = (ROOT / span).exists() or span.rstrip("/") in names
        if not exists:
            missing.append(f"{doc.name}: `{span}`")
    return missing


def slug(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation dropped, spaces as hyphens."""
    text = re.sub(r"`|\*\*|__|\[([^\]]*)\]\([^)]*\)", lambda m: m.group(1) or "", heading).lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    prose, _ = split(path.read_text())
    found: set[str] = set()
    for line in prose:
        heading = HEADING.match(line)
        if heading:
            base = slug(heading.group(2))
            name, n = base, 0
            while name in found:
                n += 1
                name = f"{base}-{n}"
            found.add(name)
    return found


def broken_links(doc: Path, text: str) -> list[str]:
    """The relative links of a doc whose target (from the doc's folder) or #anchor is not there."""
    prose, _ = split(text)
    broken = []
    for line in prose:
        for target in LINK.findall(re.sub(r"`[^`]*`", "", line)):
            if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # https:, mailto:
                continue
            where, _, anchor = target.partition("#")
            path = (doc.parent / where).resolve() if where else doc
            if not path.exists():
                broken.append(f"{doc.name}: ({target}): no {where}")
            elif anchor and path.suffix == ".md" and anchor not in anchors(path):
                broken.append(f"{doc.name}: ({target}): no heading #{anchor} in {path.name}")
    return broken


def layout_tree(text: str) -> list[str]:
    """The paths of the README's layout tree: the fenced block under its "Layout" heading, one entry a
    line (a name, then its description after two spaces), nested by two spaces a level."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if re.match(r"^##\s+Layout\b", line))
    _, blocks = split("\n".join(lines[start:]))
    tree = blocks[0][1]
    paths, folders = [], []  # folders: the open folder at each depth
    for line in tree:
        if not line.strip():
            continue
        depth = (len(line) - len(line.lstrip(" "))) // 2
        name = line.split()[0]
        folders = folders[:depth]
        path = "".join(folders) + name
        paths.append(path)
        if name.endswith("/"):
            folders.append(name)
    return paths


def test_every_make_target_named_is_one_of_the_makefile():
    targets = makefile_targets()
    unknown = [
        f"{doc.name}: make {t}"
        for doc in docs()
        for t in sorted(make_targets_named(doc.read_text()))
        if t not in targets
    ]
    assert not unknown, unknown


def test_every_path_named_exists():
    names = names_in_repository()
    missing = [m for doc in docs() for m in missing_paths(doc, doc.read_text(), names)]
    assert not missing, missing


def test_every_link_between_the_docs_leads_somewhere():
    broken = [b for doc in docs() for b in broken_links(doc, doc.read_text())]
    assert not broken, broken


def test_the_layout_tree_names_what_is_there():
    paths = layout_tree(README.read_text())
    assert len(paths) > 20, paths
    missing = [p for p in paths if not (ROOT / p).exists()]
    assert not missing, missing


def test_every_docs_file_is_linked_from_the_readme():
    prose, _ = split(README.read_text())
    linked = {target.partition("#")[0] for line in prose for target in LINK.findall(line)}
    assert DOCS, "no docs/ files"
    assert [f"docs/{d.name}" for d in DOCS if f"docs/{d.name}" not in linked] == []


def test_the_readme_is_read_in_five_minutes():
    assert len(README.read_text().splitlines()) <= README_LINES


# The checks themselves: what they take for a target, a path, a link, and that they find what is wrong.


def test_a_make_command_is_told_from_the_verb():
    text = (
        "Run `make demo`, `make serve SPEED=60` and `make -n test`; to make a GIF.\n```sh\nmake deploy STAGE=dev\n```\n"
        "A span over two lines: `make\ndestroy`.\n"
    )
    assert make_targets_named(text) == {"demo", "serve", "deploy", "destroy"}


@pytest.mark.parametrize(
    "text, path",
    [
        ("chalicelib/mediator/decide.py", True),
        ("resources/template.yaml", True),
        ("local/", True),
        ("requirements-dev.in", True),
        ("{imageId}/{validTime}.gif", False),
        (".chalice/policy-{stage}-{function}.json", False),
        ("/weathergif/{stage}/api-token", False),
        ("/animations", False),
        ("image/gif", False),
        ("https://maps.aerisapi.com/x.png", False),
        ("s3:GetObject", False),
        ("please-*/did-*", False),
        ("make demo", False),
        ("canyon-400x400.jpg", False),
        ("../shared/benchdata", False),
        (".py", False),
        (".gitignore", False),
        (".chalice/config.json", True),
    ],
)
def test_what_counts_as_a_path(text, path):
    assert is_path(text) is path


def test_a_missing_target_path_link_or_anchor_is_found(tmp_path):
    names = names_in_repository()
    text = "`chalicelib/mediator/decidee.py`, `local/demo.py`, `nowhere.md`, `demo-output/radar-demo.gif`\n"
    assert missing_paths(README, text, names) == [
        "README.md: `chalicelib/mediator/decidee.py`",
        "README.md: `nowhere.md`",
    ]
    assert "nosuch" not in makefile_targets() and "demo" in makefile_targets()
    doc = tmp_path / "a.md"
    (tmp_path / "b.md").write_text("# The b part\n## Exactly once\n")
    text = "[b](b.md#exactly-once) [c](c.md) [bad](b.md#exactly-twice) [web](https://example.com/x)\n"
    assert broken_links(doc, text) == [
        "a.md: (c.md): no c.md",
        "a.md: (b.md#exactly-twice): no heading #exactly-twice in b.md",
    ]


def test_headings_anchor_as_github_makes_them():
    assert slug("Exactly once: FIFO groups, and why") == "exactly-once-fifo-groups-and-why"
    assert slug("`make serve SPEED=`") == "make-serve-speed"
    assert slug("Speed & memory") == "speed--memory"
