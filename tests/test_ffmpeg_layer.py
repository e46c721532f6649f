"""The ffmpeg layer the GIF worker's MP4 encoder runs from (deploy/ffmpeg_layer.py)."""

from __future__ import annotations

import stat
import subprocess
import zipfile

import boto3
import pytest
from moto import mock_aws

from deploy import ffmpeg_layer
from tests import bundle

pytestmark = pytest.mark.integration  # runs the binary (a subprocess)


@pytest.fixture
def layer_zip(ffmpeg_zip, tmp_path):
    """The run's layer zip under the name the bundle's checks look for."""
    (tmp_path / "layer").mkdir()
    (tmp_path / "layer" / bundle.FFMPEG_LAYER_ZIP).symlink_to(ffmpeg_zip)
    return tmp_path / "layer" / bundle.FFMPEG_LAYER_ZIP


def test_the_layer_holds_the_pinned_checked_static_ffmpeg_executable(layer_zip, tmp_path):
    with zipfile.ZipFile(layer_zip) as archive:
        info = archive.getinfo(ffmpeg_layer.IN_LAYER)
        assert stat.S_IMODE(info.external_attr >> 16) == 0o755
        archive.extractall(tmp_path)
    assert ffmpeg_layer.sha256(tmp_path / "bin/ffmpeg") == ffmpeg_layer.BINARY_SHA256
    (tmp_path / "bin/ffmpeg").chmod(0o755)  # extractall drops modes; Lambda keeps them
    encoders = subprocess.run(
        [str(tmp_path / "bin/ffmpeg"), "-hide_banner", "-encoders"], capture_output=True, text=True
    )
    assert " libx264 " in encoders.stdout
    assert ffmpeg_layer.pinned_version() == "0.5.1"
    # static: no library it links to, no glibc version it needs
    assert bundle.check_elves(layer_zip.parent) == []
    [elf] = [e for e in bundle.elves(layer_zip.parent) if e.name == ffmpeg_layer.IN_LAYER]
    assert elf.needed == [] and elf.versions == []
    assert ffmpeg_layer.build(tmp_path / "again.zip").read_bytes() == layer_zip.read_bytes()  # the same bytes


def test_the_layer_is_made_once_and_then_reused_until_what_it_holds_changes(ffmpeg_zip, tmp_path, monkeypatch):
    """`make deploy` zips 74 MB once: later deploys find the zip, named by what it holds."""
    (tmp_path / ffmpeg_zip.name).symlink_to(ffmpeg_zip)  # as a first deploy left it
    monkeypatch.setattr(ffmpeg_layer, "_write", lambda target, *_: pytest.fail(f"wrote {target} again"))
    assert ffmpeg_layer.made(tmp_path) == tmp_path / ffmpeg_zip.name
    monkeypatch.setattr(ffmpeg_layer, "NOTE", ffmpeg_layer.NOTE + "and a line more\n")
    monkeypatch.setattr(ffmpeg_layer, "_write", lambda target, *_: target.write_bytes(b"zip") and target)
    other = ffmpeg_layer.made(tmp_path)  # another note: another zip
    assert other != tmp_path / ffmpeg_zip.name and other.read_bytes() == b"zip"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([ffmpeg_zip.name, other.name])  # no partial one
    monkeypatch.setattr(ffmpeg_layer, "BINARY_SHA256", "0" * 64)
    with pytest.raises(ffmpeg_layer.LayerError, match="not the 0000"):  # checked each time, made or not
        ffmpeg_layer.made(tmp_path)


def test_publish_once_per_content(layer_zip, tmp_path):
    small = tmp_path / "small.zip"
    with zipfile.ZipFile(small, "w") as archive:
        archive.writestr("bin/ffmpeg", b"stand-in")
    with mock_aws():
        client = boto3.client("lambda", region_name="us-east-1")
        first = ffmpeg_layer.publish(client, "dev", small)
        assert ":layer:weathergif-dev-ffmpeg:1" in first
        assert ffmpeg_layer.publish(client, "dev", small) == first  # the same bytes: not again
        (tmp_path / "other.zip").write_bytes(small.read_bytes() + b"\0")
        assert ffmpeg_layer.publish(client, "dev", tmp_path / "other.zip").endswith(":2")
        [version] = [
            v
            for v in client.list_layer_versions(LayerName="weathergif-dev-ffmpeg")["LayerVersions"]
            if v["Version"] == 1
        ]
        assert version["CompatibleRuntimes"] == ["python3.11"] and version["LicenseInfo"] == "GPL-3.0-or-later"


def test_a_different_binary_is_refused(monkeypatch):
    monkeypatch.setattr(ffmpeg_layer, "BINARY_SHA256", "0" * 64)
    with pytest.raises(ffmpeg_layer.LayerError, match="not the 0000"):
        ffmpeg_layer.binary()
