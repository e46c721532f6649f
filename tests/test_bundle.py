"""The Lambda bundle `make package` builds is Lambda-true: its wheels are for the runtime,
its shared objects link to what the runtime has, its handlers import from it alone, every
module in it carries its checked-hash bytecode so that a cold start compiles nothing of it,
and it fits Lambda's limits. One build (about a minute; the `built` fixture of tests/conftest.py)
serves every test, across xdist workers too, and tests/test_sdk.py's; one test builds the plain
`chalice package` bundle beside it."""

from __future__ import annotations

import json
import re
import shutil
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest

from tests import bundle

LAYER = bundle.LAYER_SITE + "/"
IMAGING = LAYER + "PIL/_imaging.cpython-311-x86_64-linux-gnu.so"
POCKETFFT = LAYER + "numpy/fft/_pocketfft_umath.cpython-311-x86_64-linux-gnu.so"


@pytest.fixture
def fake_out(tmp_path: Path) -> Callable[[dict[str, dict[str, bytes]]], Path]:
    """A package output folder made of given entries: {zip name: {path: bytes}}."""

    def make(zips: dict[str, dict[str, bytes]]) -> Path:
        for zip_name, entries in zips.items():
            with zipfile.ZipFile(tmp_path / zip_name, "w", zipfile.ZIP_DEFLATED) as archive:
                for name, data in entries.items():
                    archive.writestr(name, data)
        return tmp_path

    return make


def read(out: Path, zip_name: str, name: str) -> bytes:
    with zipfile.ZipFile(out / zip_name) as archive:
        return archive.read(name)


def patched(data: bytes, old: bytes, new: bytes) -> bytes:
    """`data` with one string of its .dynstr replaced by another of the same length."""
    assert len(old) == len(new) and data.count(b"\0" + old + b"\0") == 1, old
    return data.replace(b"\0" + old + b"\0", b"\0" + new + b"\0")


def test_the_app_goes_in_the_function_zip_and_its_dependencies_in_the_layer(built):
    with zipfile.ZipFile(built.out / bundle.FUNCTION_ZIP) as function:
        app_files = set(function.namelist())
    with zipfile.ZipFile(built.out / bundle.LAYER_ZIP) as layer:
        layer_files = set(layer.namelist())
    assert {"app.py", "chalice/app.py", "chalicelib/web/index.html", "chalicelib/imaging/gif.py"} <= app_files
    assert not any(name.startswith(("PIL/", "numpy/", "msgspec/", "local/", "tests/", "deploy/")) for name in app_files)
    assert all(name.startswith(LAYER) for name in layer_files)
    assert {LAYER + "PIL/__init__.py", LAYER + "numpy/__init__.py", IMAGING} <= layer_files
    assert not any(name.startswith((LAYER + "boto3/", LAYER + "botocore/")) for name in layer_files)  # the runtime's
    terraform = json.loads((built.out / "chalice.tf.json").read_text())["resource"]
    assert set(terraform["aws_lambda_layer_version"]) == {"managed-layer"}


# a. wheels ---------------------------------------------------------------------------------


def test_a_every_wheel_is_for_the_runtime_and_none_was_built_here(built):
    assert bundle.check_wheels(built.out, built.log) == []
    lines = [line for line in built.log.splitlines() if "Build missing wheels from sdists" in line]
    assert len(lines) == 2 and all(line.endswith("): set()") for line in lines)  # chalice said so, both passes
    pillow = [
        name
        for name in zipfile.ZipFile(built.out / bundle.LAYER_ZIP).namelist()
        if re.fullmatch(re.escape(LAYER) + r"pillow-[\d.]+\.dist-info/WHEEL", name)
    ]
    assert pillow and "manylinux2014_x86_64" in read(built.out, bundle.LAYER_ZIP, pillow[0]).decode()


def test_a_flags_a_wheel_built_on_the_packaging_host(fake_out):
    """What Pillow 13.0.0 on Python 3.11 gives: chalice finds no wheel for glibc 2.26 and builds the sdist."""
    host_built = "Wheel-Version: 1.0\nRoot-Is-Purelib: false\nTag: cp311-cp311-linux_x86_64\n"
    too_new = "Wheel-Version: 1.0\nTag: cp311-cp311-manylinux_2_27_x86_64\nTag: cp311-cp311-manylinux_2_28_x86_64\n"
    mixed = "Wheel-Version: 1.0\nTag: cp311-cp311-manylinux_2_5_x86_64\nTag: cp311-cp311-manylinux_2_28_x86_64\n"
    out = fake_out(
        {
            bundle.LAYER_ZIP: {
                LAYER + "pillow-13.0.0.dist-info/WHEEL": host_built.encode(),
                LAYER + "numpy-2.4.0.dist-info/WHEEL": too_new.encode(),
                LAYER + "charset_normalizer-3.5.3.dist-info/WHEEL": mixed.encode(),
            }
        }
    )
    log = (
        "chalice.deploy.packager [DEBUG] Build missing wheels from sdists (C compiling True): "
        "{pillow==13.0.0(sdist)}\n"
        "chalice.deploy.packager [DEBUG] Build missing wheels from sdists (C compiling False): set()\n"
    )
    problems = bundle.check_wheels(out, log, glibc=(2, 26))
    assert len(problems) == 3, problems
    assert "pillow-13.0.0.dist-info/WHEEL: cp311-cp311-linux_x86_64: built on the packaging host" in problems[0]
    assert "numpy-2.4.0" in problems[1] and "needs glibc 2.27" in problems[1]
    assert problems[2].startswith("built on the packaging host") and "{pillow==13.0.0(sdist)}" in problems[2]
    newer = bundle.check_wheels(out, log, glibc=(2, 34))  # python3.12+: manylinux_2_28 fits
    assert newer == [problems[0], problems[2]]
    assert bundle.check_wheels(out, "no debug output")[-1].startswith("no 'Build missing wheels from sdists' line")


# b. shared objects -------------------------------------------------------------------------


def test_b_every_shared_object_links_to_what_the_runtime_has(built):
    assert bundle.check_elves(built.out) == []
    found = {elf.name: elf for elf in bundle.elves(built.out)}
    assert len(found) > 20 and IMAGING in found  # Pillow, numpy, charset-normalizer, the messages' library
    bundled = {Path(name).name for name in zipfile.ZipFile(built.out / bundle.LAYER_ZIP).namelist()}
    jpeg = [library for library in found[IMAGING].needed if library.startswith("libjpeg")]
    assert jpeg and set(jpeg) <= bundled  # Pillow's own libjpeg (pillow.libs/), not the system's
    assert ("libc.so.6", "GLIBC_2.2.5") in found[IMAGING].versions


def test_b_flags_a_newer_glibc_or_libstdcxx_and_a_missing_library(built, fake_out):
    """Pillow's _imaging made to need GLIBC_2.28 and numpy's pocketfft GLIBCXX_9.9, without pillow.libs."""
    imaging = patched(read(built.out, bundle.LAYER_ZIP, IMAGING), b"GLIBC_2.14", b"GLIBC_2.28")
    pocketfft = patched(read(built.out, bundle.LAYER_ZIP, POCKETFFT), b"GLIBCXX_3.4", b"GLIBCXX_9.9")
    out = fake_out({bundle.LAYER_ZIP: {IMAGING: imaging, POCKETFFT: pocketfft}})
    problems = bundle.check_elves(out, glibc=(2, 26))
    assert any(
        "_imaging" in p and "needs GLIBC_2.28 from libc.so.6; the runtime has glibc 2.26" in p for p in problems
    ), problems
    assert any("_pocketfft_umath" in p and "GLIBCXX_9.9 from the system's libstdc++.so.6" in p for p in problems)
    missing = [p for p in problems if "neither in the bundle nor in the runtime" in p]
    assert any("libjpeg" in p for p in missing) and all("_imaging" in p for p in missing)  # pocketfft: none
    assert not any("GLIBC_2.28" in p for p in bundle.check_elves(out, glibc=(2, 34)))  # python3.12+ has 2.34


def test_b_flags_a_system_library_lambda_does_not_ship(built, fake_out):
    """Pillow's libavif made to link libGL instead of libdl (libGL is on auditwheel's manylinux list;
    not on Lambda's images)."""
    [avif] = [
        name
        for name in zipfile.ZipFile(built.out / bundle.LAYER_ZIP).namelist()
        if name.startswith(LAYER + "pillow.libs/libavif-")
    ]
    out = fake_out(
        {bundle.LAYER_ZIP: {avif: patched(read(built.out, bundle.LAYER_ZIP, avif), b"libdl.so.2", b"libGL.so.1")}}
    )
    assert any("libGL.so.1" in p and "neither in the bundle nor in the runtime" in p for p in bundle.check_elves(out))


def test_b_flags_the_host_libc(fake_out):
    """This machine's libc needs glibc's private symbols from its loader, like anything built for it."""
    maps = Path("/proc/self/maps").read_text().split()
    libc = next((Path(word) for word in maps if re.search(r"/libc(\.so\.6|-[\d.]+\.so)$", word)), None)
    if libc is None:
        pytest.skip("no glibc in this process")
    out = fake_out({bundle.FUNCTION_ZIP: {"lib/libc.so.6": libc.read_bytes()}})
    assert any("GLIBC_PRIVATE" in p for p in bundle.check_elves(out))


# c. imports -----------------------------------------------------------------------------------


def test_c_every_handler_imports_and_works_from_the_bundle_alone(built):
    assert bundle.check_imports(built.out) == []


def test_c_flags_a_layer_without_numpy(built, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    shutil.copy(built.out / bundle.FUNCTION_ZIP, out)
    with (
        zipfile.ZipFile(built.out / bundle.LAYER_ZIP) as source,
        zipfile.ZipFile(out / bundle.LAYER_ZIP, "w", zipfile.ZIP_STORED) as target,
    ):
        for info in source.infolist():
            if not info.filename.startswith((LAYER + "numpy/", LAYER + "numpy.libs/")):
                target.writestr(info.filename, source.read(info), zipfile.ZIP_STORED)
    [problem] = bundle.check_imports(out)
    assert "exited 1" in problem and "No module named 'numpy'" in problem


# d. sizes ---------------------------------------------------------------------------------


def test_d_function_and_layer_fit_lambdas_limits(built, capsys):
    assert bundle.check_sizes(built.out) == []
    measured = bundle.sizes(built.out)
    with capsys.disabled():
        print(f"\n{measured}")
    assert measured.zipped[bundle.FUNCTION_ZIP] < 1 * 2**20 < measured.zipped[bundle.LAYER_ZIP]
    problems = bundle.check_sizes(built.out, max_zipped=10 * 2**20, max_unzipped=50 * 2**20)
    assert [p.split(" is ")[0].split(" are ")[0] for p in problems] == [bundle.LAYER_ZIP, "function and layer"]


# Terraform ---------------------------------------------------------------------------------


def test_the_terraform_extras_name_what_chalice_made_and_keep_stages_apart(built):
    """deploy/terraform/*.tf.json go beside chalice.tf.json (Terraform merges an override file into
    it): every resource they override and every function they refer to is one Chalice made."""
    from deploy.record import terraform_extras

    generated = json.loads((built.out / "chalice.tf.json").read_text())
    resources, functions = generated["resource"], generated["resource"]["aws_lambda_function"]
    extras = terraform_extras()
    override = extras["weathergif_override.tf.json"]
    for kind, named in override["resource"].items():
        assert set(named) <= set(resources[kind]), kind
    for name, extra in extras.items():
        referred = set(re.findall(r"\$\{aws_lambda_function\.(\w+)\.", json.dumps(extra)))
        assert referred and referred <= set(functions), name
    for config in extras["weathergif.tf.json"]["resource"]["aws_lambda_function_event_invoke_config"].values():
        for dependency in config["depends_on"]:  # made after the role's policy that lets it send
            kind, resource = dependency.split(".")
            assert resource in resources[kind], dependency
    # Chalice's own rule names carry no stage (two stages in one account collide); the override's do.
    rules = resources["aws_cloudwatch_event_rule"]
    assert {rule["name"] for rule in rules.values()} == {"fetch_due_frames-event", "rebuild_gifs-event"}
    assert functions["fetch_due_frames"]["function_name"] == "weathergif-dev-fetch_due_frames"
    assert override["resource"]["aws_cloudwatch_event_rule"]["fetch_due_frames-event"]["name"] == (
        "${aws_lambda_function.fetch_due_frames.function_name}-event"
    )
    for worker in ("fetch_amp_image", "create_gif", "thumbnail_upload"):  # the failure queue, by the variable
        assert functions[worker]["environment"]["variables"]["WORKER_FAILURE_QUEUE"] == "weathergif-dev-worker-failures"
    # Chalice pins Terraform < 1.4 and the AWS provider < 5; the override lets current Terraform in.
    assert generated["terraform"]["required_version"].endswith("< 1.4.0")
    assert override["terraform"] == {
        "required_version": ">= 1.0",
        "required_providers": {"aws": {"version": ">= 3.61.0, < 6.0"}},
    }
    assert not re.search(r"(?<![0-9])[0-9]{12}(?![0-9])", (built.out / "chalice.tf.json").read_text())


def test_python_m_deploy_package_puts_the_extras_beside_chalices_output(built, tmp_path):
    import os
    import subprocess
    import sys

    out = tmp_path / "terraform"
    env = {**os.environ, "AWS_DEFAULT_REGION": "us-east-1"}  # chalice package needs a region, as deploy does
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # as on a developer's machine: Python writes bytecode as it imports
    run = subprocess.run(
        [sys.executable, "-m", "deploy", "package", "dev", "--out", str(out)],
        cwd=built.project,
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
    )  # chalice's cache in the project: quick
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-3000:]
    assert {
        "chalice.tf.json",
        "deployment.zip",
        "layer-deployment.zip",
        "weathergif_override.tf.json",
        "weathergif.tf.json",
    } <= {path.name for path in out.iterdir()}
    assert "layer-deployment.zip" in run.stdout and "MB" in run.stdout
    assert run.stdout.count("carry their bytecode already") == 2  # the build's zips, as they were
    assert bundle.check_bytecode(out) == []


# e. bytecode ------------------------------------------------------------------------------


def rezipped(out: Path, target: Path, changes: dict[str, bytes]) -> Path:
    """A copy of the bundle in `target` with some entries of the function zip given new bytes."""
    target.mkdir()
    shutil.copy(out / bundle.LAYER_ZIP, target)
    with (
        zipfile.ZipFile(out / bundle.FUNCTION_ZIP) as source,
        zipfile.ZipFile(target / bundle.FUNCTION_ZIP, "w", zipfile.ZIP_DEFLATED) as copy,
    ):
        for info in source.infolist():
            copy.writestr(info, changes.get(info.filename, source.read(info)))
    return target


@pytest.mark.integration  # compiles in a process pool
def test_e_bytecode_is_added_to_a_zip_without_compressing_its_entries_again(tmp_path):
    """A zip of sources alone (the layer's, of wheels) keeps each entry where and as it was, its
    .pyc files after them; one with __pycache__ entries to drop or replace is written anew."""
    from deploy import bytecode

    sources = {"pkg/__init__.py": b"", "pkg/mod.py": b"VALUE = 1\n" * 200, "pkg/broken.py": b"def (:\n"}
    plain = tmp_path / "layer.zip"
    with zipfile.ZipFile(plain, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in {**sources, "pkg/data.txt": b"x" * 500}.items():
            archive.writestr(name, data)
    with zipfile.ZipFile(plain) as archive:
        before = {i.filename: (i.header_offset, i.compress_size, i.CRC) for i in archive.infolist()}
    added = bytecode.add_to_zip(bytecode.Bundle("layer", plain, bytecode.LAYER_ROOT))
    assert (added.compiled, added.dropped, added.failed) == (2, 0, ("pkg/broken.py",))
    with zipfile.ZipFile(plain) as archive:
        after = archive.infolist()
    assert {i.filename: (i.header_offset, i.compress_size, i.CRC) for i in after[: len(before)]} == before
    assert [i.filename for i in after[len(before) :]] == [
        f"pkg/__pycache__/__init__.{bytecode.CACHE_TAG}.pyc",
        f"pkg/__pycache__/mod.{bytecode.CACHE_TAG}.pyc",
    ]
    assert bytecode.missing(plain) == ["pkg/broken.py"]

    stale = tmp_path / "app.zip"
    with zipfile.ZipFile(stale, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("pkg/mod.py", sources["pkg/mod.py"])
        archive.writestr(f"pkg/__pycache__/mod.{bytecode.CACHE_TAG}.pyc", b"a working tree's")
        archive.writestr(f"gone/__pycache__/old.{bytecode.CACHE_TAG}.pyc", b"of a source not in the zip")
    added = bytecode.add_to_zip(bytecode.Bundle("app", stale, bytecode.FUNCTION_ROOT))
    assert (added.compiled, added.dropped) == (1, 1)
    with zipfile.ZipFile(stale) as archive:
        assert archive.namelist() == ["pkg/mod.py", f"pkg/__pycache__/mod.{bytecode.CACHE_TAG}.pyc"]
    assert bytecode.missing(stale) == []


def test_e_every_module_in_both_zips_carries_its_checked_hash_bytecode(built):
    assert bundle.check_bytecode(built.out) == []
    with zipfile.ZipFile(built.out / bundle.FUNCTION_ZIP) as function:
        names = set(function.namelist())
    assert {
        "__pycache__/app.cpython-311.pyc",
        "chalice/__pycache__/app.cpython-311.pyc",
        "chalice/__pycache__/__init__.cpython-311.pyc",
        "chalicelib/__pycache__/entry.cpython-311.pyc",
    } <= names
    with zipfile.ZipFile(built.out / bundle.LAYER_ZIP) as layer:
        pycs = [name for name in layer.namelist() if name.endswith(".pyc")]
    assert LAYER + "PIL/__pycache__/Image.cpython-311.pyc" in pycs and len(pycs) > 1000
    # chalice package shipped the zips the bytecode step made, as Chalice reuses its own
    assert "Reusing existing app deployment package" in built.log
    assert "Reusing existing shared layer deployment package" in built.log
    made = {path.name.split("-")[0]: path for path in (built.project / ".chalice" / "deployments").glob("*.zip")}
    assert (built.out / bundle.FUNCTION_ZIP).read_bytes() == made["appcode"].read_bytes()
    assert (built.out / bundle.LAYER_ZIP).read_bytes() == made["managed"].read_bytes()


@pytest.mark.heavy
def test_e_a_changed_source_wins_over_its_stale_bytecode(built, tmp_path):
    """One byte of app.py changed after the build: its checked-hash .pyc no longer matches, and
    Python compiles the source it finds. Had the .pyc been unchecked-hash, the old code would run."""
    source = read(built.out, bundle.FUNCTION_ZIP, "app.py")
    changed = source.replace(b'"""weathergif:', b'"""Weathergif:', 1)
    assert len(changed) == len(source) and sum(a != b for a, b in zip(source, changed)) == 1
    script = "import app\nresult['doc'] = app.__doc__.split(':')[0]\n"

    checked = rezipped(built.out, tmp_path / "checked", {"app.py": changed})
    assert bundle.check_bytecode(checked) == [
        "deployment.zip:app.py: __pycache__/app.cpython-311.pyc is for other source bytes"
    ]
    ran = bundle.run_in_bundle(checked, script)
    assert not isinstance(ran, str), ran
    assert ran.result["doc"] == "Weathergif"  # the source as shipped
    assert [Path(file).relative_to(ran.roots[0]) for file in ran.result["compiled"]] == [Path("app.py")]
    assert ran.written == []

    pyc = read(built.out, bundle.FUNCTION_ZIP, "__pycache__/app.cpython-311.pyc")
    unchecked = pyc[:4] + (0b01).to_bytes(4, "little") + pyc[8:]  # PEP 552: hash-based, not checked
    trusting = rezipped(
        built.out, tmp_path / "unchecked", {"app.py": changed, "__pycache__/app.cpython-311.pyc": unchecked}
    )
    ran = bundle.run_in_bundle(trusting, script)
    assert not isinstance(ran, str), ran
    assert ran.result["doc"] == "weathergif" and ran.result["compiled"] == []  # stale code, silently
    assert "is unchecked-hash, not checked-hash" in bundle.check_bytecode(trusting)[0]


@pytest.mark.heavy
def test_e_plain_chalice_package_on_a_fresh_clone_ships_the_same_sources_without_bytecode(built, tmp_path):
    """Chalice as it documents itself, with no bytecode step: the same files, byte for byte, less
    the .pyc files; its bundle works, and compiles on every cold start what it imports."""
    plain = bundle.build(tmp_path, bytecode=False)
    for name in (bundle.FUNCTION_ZIP, bundle.LAYER_ZIP):
        with zipfile.ZipFile(plain.out / name) as without, zipfile.ZipFile(built.out / name) as with_:
            sources = {n for n in without.namelist() if "/__pycache__/" not in f"/{n}"}
            assert sources == {n for n in with_.namelist() if "/__pycache__/" not in f"/{n}"}, name
            assert all(without.read(n) == with_.read(n) for n in sources), name
    missing = bundle.check_bytecode(plain.out)
    assert any(p.startswith("deployment.zip:app.py: no ") for p in missing)
    # the pycs Chalice zips from chalicelib/__pycache__ (app.py's import wrote them) are timestamp-based
    assert any("timestamp-based" in p for p in missing)
    assert bundle.check_imports(plain.out, bytecode=False) == []
    [compiled] = bundle.check_imports(plain.out)
    assert re.match(r"compiled \d{3,} of the bundle's sources on import: ", compiled), compiled


# f. the GIF worker's formats, with its ffmpeg layer -------------------------------------------


@pytest.fixture(scope="module")
def with_ffmpeg(built: bundle.Build, ffmpeg_zip: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """What create_gif carries on Lambda: the function, the dependencies' layer and the ffmpeg layer."""
    out = tmp_path_factory.mktemp("with-ffmpeg")
    for name in (bundle.FUNCTION_ZIP, bundle.LAYER_ZIP):
        (out / name).symlink_to(built.out / name)
    (out / bundle.FFMPEG_LAYER_ZIP).symlink_to(ffmpeg_zip)
    return out


@pytest.mark.heavy
def test_f_webp_and_mp4_are_made_from_the_bundle_and_the_ffmpeg_layer(with_ffmpeg, capsys, tmp_path):
    assert bundle.check_formats(with_ffmpeg) == []
    assert bundle.check_elves(with_ffmpeg) == []  # the static ffmpeg needs no library and no glibc
    assert bundle.check_sizes(with_ffmpeg) == []  # each zip under 50 MB; the three under 250 MB unzipped
    measured = bundle.sizes(with_ffmpeg)
    with capsys.disabled():
        print(f"\ncreate_gif: {measured}")
    # the ffmpeg layer would not fit in the dependencies' layer: together over 50 MB zipped
    assert measured.zipped[bundle.LAYER_ZIP] + measured.zipped[bundle.FFMPEG_LAYER_ZIP] > bundle.MAX_ZIPPED
    assert bundle.check_formats(tmp_path) == [f"no {bundle.FFMPEG_LAYER_ZIP}"]
