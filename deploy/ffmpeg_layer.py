"""The ffmpeg layer: the static ffmpeg the GIF worker's MP4 encoder runs, as a Lambda layer of its own.

Why a layer of its own: the dependencies' layer Chalice builds (automatic_layer) is 37 MB zipped
and 120 MB unzipped and every function carries it; ffmpeg adds 27 MB zipped and 74 MB unzipped,
which together pass the 50 MB Lambda takes per direct upload. As a second layer that only
create_gif names, its function has 195 MB of the 250 MB Lambda allows unzipped, and no other
function carries it.

What is in it: `bin/ffmpeg` (/opt/bin/ffmpeg on Lambda, where chalicelib/imaging/mp4.py looks
first), the static build of ffmpeg 4.2.2 with libx264 that the imageio-ffmpeg wheel pinned in
requirements-dev.txt carries (the binary the tests ran), checked against its SHA-256; and a note
of where it comes from. A static binary links to no library, so it needs nothing of Amazon
Linux 2's glibc 2.26 (tests/test_bundle.py checks it, and that it encodes from the bundle).

Publishing: `publish(lambda_client, stage)` publishes the zip as layer `weathergif-{stage}-ffmpeg`
unless a version of the same bytes is there already (its SHA-256 is in the description), and
returns the layer version's ARN, for create_gif's `"layers": [ARN]` in .chalice/config.json.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import os
import re
import zipfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = "imageio-ffmpeg"
BINARY = "imageio_ffmpeg/binaries/ffmpeg-linux64-v4.2.2"  # in the package, as installed
BINARY_SHA256 = "700073daef5c23bbcb18c2eae60553a454a5221ec19b4a88c8c367a664671a7c"
IN_LAYER = "bin/ffmpeg"  # /opt/bin/ffmpeg
RUNTIMES = ["python3.11"]
ARCHITECTURES = ["x86_64"]
LICENSE = "GPL-3.0-or-later"  # ffmpeg built with --enable-gpl --enable-version3 and libx264
NOTE = """\
bin/ffmpeg: ffmpeg 4.2.2, a static build with libx264 (https://johnvansickle.com/ffmpeg/), as the
{package} {version} wheel on PyPI carries it; SHA-256 {digest}.
ffmpeg and x264 are GPL software: their sources are at https://ffmpeg.org and
https://www.videolan.org/developers/x264.html.
"""


class LayerError(RuntimeError):
    pass


def layer_name(stage: str) -> str:
    return f"weathergif-{stage}-ffmpeg"


def pinned_version(lock: Path = ROOT / "requirements-dev.txt") -> str:
    """The imageio-ffmpeg version requirements-dev.txt pins."""
    found = re.search(rf"^{re.escape(PACKAGE)}==([^\s;]+)", lock.read_text(), re.MULTILINE)
    if not found:
        raise LayerError(f"{lock.name} pins no {PACKAGE}")
    return found.group(1)


def binary() -> tuple[Path, str]:
    """The installed package's ffmpeg and the package's version: the pinned one, the checked bytes."""
    try:
        distribution = importlib.metadata.distribution(PACKAGE)
    except importlib.metadata.PackageNotFoundError:
        raise LayerError(f"{PACKAGE} is not installed: make .venv/.installed") from None
    if distribution.version != pinned_version():
        raise LayerError(f"{PACKAGE} {distribution.version} is installed, {pinned_version()} pinned: run make")
    path = Path(str(distribution.locate_file(BINARY)))
    if not path.is_file():
        raise LayerError(f"{PACKAGE} {distribution.version} has no {BINARY}")
    digest = sha256(path)
    if digest != BINARY_SHA256:
        raise LayerError(f"{path} has SHA-256 {digest}, not the {BINARY_SHA256} this layer was checked with")
    return path, distribution.version


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def build(target: Path) -> Path:
    """The layer's zip at `target`: bin/ffmpeg (executable) and the note of where it comes from.
    Its entries carry fixed dates, so the same binary gives the same bytes. Zipping the 74 MB takes
    about 3 s of CPU: `made` does it once."""
    return _write(target, *binary())


def _write(target: Path, path: Path, version: str) -> Path:
    target.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data, mode in (
            (IN_LAYER, path.read_bytes(), 0o755),
            ("share/weathergif/ffmpeg.txt", _note(version), 0o644),
        ):
            info = zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0))
            info.external_attr = (0o100000 | mode) << 16  # a regular file with its mode, which Lambda keeps
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, data)
    return target


def _note(version: str) -> bytes:
    return NOTE.format(package=PACKAGE, version=version, digest=BINARY_SHA256).encode()


def made(folder: Path) -> Path:
    """The layer's zip in `folder`, built there once and then reused, as Chalice reuses the zips
    of its own layer: named by what it holds (the checked binary and the note), so a deploy after
    the first zips no 74 MB again, and another binary or note makes another name."""
    path, version = binary()
    recipe = hashlib.sha256(f"{IN_LAYER}\n{BINARY_SHA256}\n".encode() + _note(version)).hexdigest()
    target = folder / f"ffmpeg-layer-{recipe[:16]}.zip"
    if not target.exists():
        partial = target.with_name(f"{target.name}.{os.getpid()}")  # a zip is there whole or not at all
        _write(partial, path, version)  # the binary checked once, above
        os.replace(partial, target)
    return target


def publish(lambda_client: Any, stage: str, zip_path: Path) -> str:
    """The ARN of layer weathergif-{stage}-ffmpeg's version holding these bytes: an existing one
    (found by the SHA-256 in its description), or one published now."""
    data = zip_path.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    description = f"static ffmpeg 4.2.2 with libx264 for create_gif; zip sha256 {digest}"
    name = layer_name(stage)
    paginator = lambda_client.get_paginator("list_layer_versions")
    for page in paginator.paginate(LayerName=name):
        for version in page.get("LayerVersions", []):
            if version.get("Description") == description:
                return str(version["LayerVersionArn"])
    published = lambda_client.publish_layer_version(
        LayerName=name,
        Description=description,
        Content={"ZipFile": data},
        CompatibleRuntimes=RUNTIMES,
        CompatibleArchitectures=ARCHITECTURES,
        LicenseInfo=LICENSE,
    )
    return str(published["LayerVersionArn"])
