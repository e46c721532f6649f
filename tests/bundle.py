"""The Lambda bundle as `chalice package` builds it, and checks that it is Lambda-true.

`build()` packages a fresh clone of the project as `make package` does: the bundle's
bytecode (`python -m deploy bytecode dev`: Chalice's packagers build the zips, each .py
gets its checked-hash .pyc), then `chalice --debug package` (Terraform format, stage dev),
which reuses those zips; `build(..., bytecode=False)`, as plain `chalice package` does.
The checks take the output folder (`deployment.zip`, the app, and `layer-deployment.zip`,
the dependencies: `automatic_layer` is on) and return a list of problems, empty when the
bundle would run on Lambda:

- `check_wheels`: every installed wheel is tagged for the runtime (no wheel built from an
  sdist on the packaging host);
- `check_elves`: every shared object needs no newer glibc (libstdc++, libgcc_s) than the
  runtime has, and finds every library it links to in the bundle or in the runtime;
- `check_imports`: every handler module imports, and Pillow, numpy and the messages work,
  from the unzipped bundle (read-only, no bytecode written) and the runtime's boto3 alone,
  and nothing of the bundle is compiled on the way (Python's "compile" audit event);
- `check_bytecode`: every .py in both zips has beside it the checked-hash .pyc of its bytes;
- `check_sizes`: within Lambda's size limits.

The runtime is the one Chalice packages for: the Python running it, here this one. Its AWS SDK
(boto3, botocore and what they need) is by default this venv's; `install_sdk` gives the one
Lambda's python3.11 runtime carries (RUNTIME_SDK), for `run_in_bundle(..., runtime=...)`.
"""

from __future__ import annotations

import atexit
import importlib.util
import io
import fcntl
import hashlib
import json
import marshal
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import zipfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import NamedTuple

ROOT = Path(__file__).resolve().parent.parent
STAGE = "dev"
FUNCTION_ZIP = "deployment.zip"
LAYER_ZIP = "layer-deployment.zip"
# The GIF worker's second layer, the static ffmpeg (deploy/ffmpeg_layer.py); Lambda unzips every
# layer of a function into /opt, in order.
FFMPEG_LAYER_ZIP = "ffmpeg-layer.zip"
PYTHON = f"python{sys.version_info.major}.{sys.version_info.minor}"
# Where Chalice puts the packages in the layer zip (chalice/deploy/packager.py, LayerDeploymentPackager);
# Lambda unzips a layer in /opt and has /opt/python/lib/pythonX.Y/site-packages and /opt/python on sys.path.
LAYER_SITE = f"python/lib/{PYTHON}/site-packages"

# Lambda's limits (developer guide, "Lambda quotas"): 50 MB zipped per direct upload, 250 MB
# (262,144,000 bytes) unzipped for the function and all its layers together.
MAX_ZIPPED = 50 * 2**20
MAX_UNZIPPED = 250 * 2**20

# Libraries a bundle may take from the Lambda runtime: glibc's own, the C++ and GCC runtimes, and
# zlib (CPython's zlib module links to it on every Lambda runtime; numpy's bundled libgfortran
# needs it). Narrower than auditwheel's manylinux2014 list, whose X11, GL and GLib libraries
# Lambda's Amazon Linux images do not ship (lambci/docker-lambda#318).
RUNTIME_LIBS = frozenset(
    {
        "libc.so.6",
        "libm.so.6",
        "libdl.so.2",
        "librt.so.1",
        "libpthread.so.0",
        "libutil.so.1",
        "libnsl.so.1",
        "libresolv.so.2",
        "ld-linux-x86-64.so.2",
        "libgcc_s.so.1",
        "libstdc++.so.6",
        "libz.so.1",
    }
)
# Amazon Linux 2 (python3.8 to 3.11 runtimes) ships GCC 7's libstdc++, Amazon Linux 2023
# (python3.12+) GCC 11's; libgcc_s defines versions up to GCC_7.0.0 in both.
AL2_CXX = {"GLIBCXX": (3, 4, 24), "CXXABI": (1, 3, 11), "GCC": (7, 0, 0)}
AL2023_CXX = {"GLIBCXX": (3, 4, 29), "CXXABI": (1, 3, 13), "GCC": (7, 0, 0)}
_SYSTEM_CXX_LIB = {"GLIBCXX": "libstdc++.so.6", "CXXABI": "libstdc++.so.6", "GCC": "libgcc_s.so.1"}
_LEGACY_MANYLINUX = {"manylinux1": (2, 5), "manylinux2010": (2, 12), "manylinux2014": (2, 17)}

# What the Lambda Python runtime itself provides (after the function and its layers on sys.path).
RUNTIME_PACKAGES = {
    "boto3": "boto3",
    "botocore": "botocore",
    "s3transfer": "s3transfer",
    "jmespath": "jmespath",
    "dateutil": "python_dateutil",
    "six": "six",
    "urllib3": "urllib3",
}
# The AWS SDK Lambda's python3.11 runtime carries ("Runtime-included SDK versions" in the Lambda
# developer guide: boto3 and botocore 1.34.145 for a long while), with the versions of what boto3 needs
# that were current beside it (the bundle's own urllib3, which requests brings, comes first on sys.path).
RUNTIME_SDK = {
    "boto3": "1.34.145",
    "botocore": "1.34.145",
    "s3transfer": "0.10.2",
    "jmespath": "1.0.1",
    "python-dateutil": "2.9.0.post0",
    "six": "1.16.0",
    "urllib3": "1.26.19",
}
# Every module the handlers load (chalicelib/entry.py imports each on its handler's first call).
HANDLER_MODULES = (
    "chalicelib.workers.fetcher",
    "chalicelib.workers.thumbnailer",
    "chalicelib.workers.gifmaker",
    "chalicelib.workers.emailer",
    "chalicelib.workers.uploads",
    "chalicelib.workers.runner",
    "chalicelib.mediator.handler",
    "chalicelib.mediator.service",
    "chalicelib.api.animations",
    "chalicelib.api.images",
    "chalicelib.api.runs",
    "chalicelib.api.operations",
    "chalicelib.api.site",
    "chalicelib.api.auth",
    "chalicelib.api.openapi",
)
# Compiled modules that must come from the bundle, not from anywhere else (msgspec: the message models').
COMPILED_MODULES = ("PIL._imaging", "numpy._core._multiarray_umath", "msgspec._core")


class Build(NamedTuple):
    project: Path  # the project copy chalice packaged
    out: Path  # chalice package's output: chalice.tf.json, deployment.zip, layer-deployment.zip
    log: str  # chalice --debug's output (stdout and stderr)


class BuildError(RuntimeError):
    pass


def runtime_glibc(version: tuple[int, ...] = tuple(sys.version_info)) -> tuple[int, int]:
    """The glibc of Lambda's runtime for a Python version (Chalice's _RUNTIME_GLIBC):
    Amazon Linux 2 up to python3.11, Amazon Linux 2023 from python3.12."""
    return (2, 34) if tuple(version[:2]) >= (3, 12) else (2, 26)


def runtime_cxx(glibc: tuple[int, int]) -> dict[str, tuple[int, ...]]:
    return AL2023_CXX if glibc >= (2, 34) else AL2_CXX


def fresh_clone(target: Path) -> Path:
    """What a clone of the repository holds: the files git tracks (as they are in the working tree, so
    a change can be tried before it is committed; a file never added is not there, as in a clone)."""
    listed = (
        subprocess.run(["git", "ls-files", "--cached", "-z"], cwd=ROOT, capture_output=True, check=True)
        .stdout.decode()
        .split("\0")
    )
    for name in filter(None, listed):
        source = ROOT / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            (target / name).write_bytes(source.read_bytes())
    return target


def build(workdir: Path, requirements: str | None = None, timeout: float = 900, bytecode: bool = True) -> Build:
    """`python -m deploy --debug bytecode dev` (with `bytecode`), then `chalice --debug package
    --pkg-format terraform --stage dev OUT` on a fresh clone of the project in `workdir` (with
    `requirements` as its requirements.txt, if given). The log is both commands' output."""
    project, out = fresh_clone(workdir / "project"), workdir / "terraform"
    if requirements is not None:
        (project / "requirements.txt").write_text(requirements)
    # Python writes bytecode beside the sources it imports, as on a developer's machine: chalice zips
    # chalicelib/**/__pycache__ and names the app zip by a hash that covers them.
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_ENDPOINT_URL")}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["AWS_DEFAULT_REGION"] = "us-east-1"
    chalice = Path(sys.executable).with_name("chalice")  # runs on this Python: it packages for this version
    commands = [[str(chalice), "--debug", "package", "--pkg-format", "terraform", "--stage", STAGE, str(out)]]
    if bytecode:
        commands.insert(0, [sys.executable, "-m", "deploy", "--debug", "bytecode", STAGE])
    log = ""
    for command in commands:
        run = subprocess.run(command, cwd=project, capture_output=True, text=True, timeout=timeout, env=env)
        log += run.stdout + run.stderr
        if run.returncode != 0:
            raise BuildError(f"{' '.join(command[1:4])} exited {run.returncode}:\n{log[-6000:]}")
    return Build(project, out, log)


def _zips(out: Path) -> Iterator[tuple[str, zipfile.ZipFile]]:
    for name in (FUNCTION_ZIP, LAYER_ZIP, FFMPEG_LAYER_ZIP):
        if (out / name).exists():
            with zipfile.ZipFile(out / name) as archive:
                yield name, archive


# a. no wheel built on the packaging host -------------------------------------------------


def check_wheels(out: Path, log: str, glibc: tuple[int, int] | None = None) -> list[str]:
    """Every installed wheel has a tag that fits the runtime (`any`, or manylinux no newer than
    its glibc, for this Python) and none of the packaging host's (`linux_x86_64`) or musl's;
    and chalice's debug log shows it built no wheel from an sdist."""
    glibc = glibc or runtime_glibc()
    problems, wheels = [], 0
    for zip_name, archive in _zips(out):
        for name in archive.namelist():
            if not name.endswith(".dist-info/WHEEL"):
                continue
            wheels += 1
            tags = [
                line.split(":", 1)[1].strip()
                for line in archive.read(name).decode().splitlines()
                if line.startswith("Tag:")
            ]
            # A wheel may name several tags (charset-normalizer 3.5.3: manylinux_2_5 and manylinux_2_28);
            # it installs where one fits (PEP 425), but a host or musl tag is wrong wherever it appears.
            never = [f"{tag}: {_never_fits(tag)}" for tag in tags if _never_fits(tag)]
            unfit = [f"{tag}: {_tag_problem(tag, glibc)}" for tag in tags if _tag_problem(tag, glibc)]
            if not tags:
                problems.append(f"{zip_name}:{name}: no Tag")
            elif never or len(unfit) == len(tags):
                problems.append(f"{zip_name}:{name}: " + "; ".join(never or unfit))
    if not wheels:
        problems.append("no *.dist-info/WHEEL in the bundle: nothing was installed from wheels")
    problems += built_from_sdists(log)
    return problems


def _never_fits(tag: str) -> str | None:
    platform = tag.split("-")[-1]
    if tag.count("-") != 2:
        return "not a wheel tag"
    if platform.startswith("linux_"):
        return "built on the packaging host (linux_x86_64): links to its libraries, not Lambda's"
    if platform.startswith("musllinux"):
        return "musl, not glibc"
    return None


def _tag_problem(tag: str, glibc: tuple[int, int]) -> str | None:
    """Why a wheel tag does not fit the runtime, or None."""
    never = _never_fits(tag)
    if never:
        return never
    implementation, abi, platform = tag.split("-")
    minor = sys.version_info.minor
    if not (
        implementation == "py3"
        or re.fullmatch(r"py3\d+", implementation)
        and int(implementation[3:]) <= minor
        or re.fullmatch(r"cp3\d+", implementation)
        and int(implementation[3:]) <= minor
    ):
        return f"implementation {implementation}, not for python3.{minor}"
    if abi not in ("none", "abi3", f"cp3{minor}"):
        return f"ABI {abi}, not cp3{minor}'s"
    if platform == "any":
        return None
    legacy = re.fullmatch(r"(manylinux\d+)_(\w+)", platform)
    perennial = re.fullmatch(r"manylinux_(\d+)_(\d+)_(\w+)", platform)
    if legacy and legacy.group(1) in _LEGACY_MANYLINUX:
        needs, machine = _LEGACY_MANYLINUX[legacy.group(1)], legacy.group(2)
    elif perennial:
        needs, machine = (int(perennial.group(1)), int(perennial.group(2))), perennial.group(3)
    else:
        return f"platform {platform} is not Lambda's"
    if machine != "x86_64":
        return f"{machine}, not x86_64"
    if needs > glibc:
        return f"needs glibc {needs[0]}.{needs[1]}; the runtime has {glibc[0]}.{glibc[1]}"
    return None


def built_from_sdists(log: str) -> list[str]:
    """Chalice's "Build missing wheels from sdists (C compiling True|False): {...}" lines that
    name anything (`set()` when there was nothing to build). A fresh debug build logs two."""
    lines = [line for line in log.splitlines() if "Build missing wheels from sdists" in line]
    if not lines:
        return ["no 'Build missing wheels from sdists' line: not the --debug log of a fresh build"]
    return [
        f"built on the packaging host: {line.strip()}"
        for line in lines
        if not re.search(r"\(C compiling (True|False)\): set\(\)\s*$", line)
    ]


# b. every ELF file links to what Lambda has ---------------------------------------------


class Elf(NamedTuple):
    zip: str
    name: str
    machine: str
    needed: list[str]  # DT_NEEDED
    versions: list[tuple[str, str]]  # (library, version name) it needs, e.g. ("libc.so.6", "GLIBC_2.14")


def elves(out: Path) -> list[Elf]:
    """Every ELF file in both zips, with what it needs from other libraries."""
    from elftools.elf.elffile import ELFFile
    from elftools.elf.gnuversions import GNUVerNeedSection

    found = []
    for zip_name, archive in _zips(out):
        for info in archive.infolist():
            if info.is_dir() or info.file_size < 64:
                continue
            with archive.open(info) as handle:
                if handle.read(4) != b"\x7fELF":
                    continue
            elf = ELFFile(io.BytesIO(archive.read(info)))
            dynamic = elf.get_section_by_name(".dynamic")
            needed = [tag.needed for tag in dynamic.iter_tags("DT_NEEDED")] if dynamic else []
            versions = [
                (need.name, aux.name)
                for section in elf.iter_sections()
                if isinstance(section, GNUVerNeedSection)
                for need, auxiliaries in section.iter_versions()
                for aux in auxiliaries
            ]
            found.append(Elf(zip_name, info.filename, elf["e_machine"], needed, versions))
    return found


def check_elves(out: Path, glibc: tuple[int, int] | None = None) -> list[str]:
    """No ELF file needs a GLIBC_x.y newer than the runtime's, nor GLIBCXX/CXXABI/GCC versions
    newer than its system libstdc++/libgcc_s (where it takes those from the system); every
    DT_NEEDED library is in the bundle (by file name) or in the runtime."""
    glibc = glibc or runtime_glibc()
    cxx = runtime_cxx(glibc)
    found = elves(out)
    bundled = {Path(name).name for _, archive in _zips(out) for name in archive.namelist()}
    problems = []
    for elf in found:
        where = f"{elf.zip}:{elf.name}"
        if elf.machine != "EM_X86_64":
            problems.append(f"{where}: machine {elf.machine}, not x86_64")
        for library in elf.needed:
            if library not in bundled and library not in RUNTIME_LIBS:
                problems.append(f"{where}: needs {library}, which is neither in the bundle nor in the runtime")
        for library, version in elf.versions:
            match = re.fullmatch(r"(GLIBC|GLIBCXX|CXXABI|GCC)_(\d+(?:\.\d+)*)", version)
            if version == "GLIBC_PRIVATE":
                problems.append(f"{where}: needs GLIBC_PRIVATE from {library} (glibc's internals)")
            if not match:
                continue
            family, number = match.group(1), tuple(int(part) for part in match.group(2).split("."))
            if family == "GLIBC":
                if number[:2] > glibc:
                    problems.append(
                        f"{where}: needs {version} from {library}; the runtime has glibc {glibc[0]}.{glibc[1]}"
                    )
            elif library == _SYSTEM_CXX_LIB[family] and library not in bundled and number > cxx[family]:
                problems.append(
                    f"{where}: needs {version} from the system's {library}; the runtime's goes to "
                    f"{family}_{'.'.join(map(str, cxx[family]))}"
                )
    return problems


# c. the handlers import from the bundle alone, compiling nothing of it -------------------

# Run first in the bundle's interpreter: Lambda's sys.path, and a record of every source of the
# bundle compiled ("compile" is the audit event of compile(), which the import system calls for a
# module it has no usable .pyc for; a module loaded from its .pyc raises none).
_PRELUDE = r"""
import json, sys
function, layer, layer_site, layer_root, runtime, argument = json.loads(sys.argv[1])
compiled = []
def _audit(event, args, bundle=(function + "/", layer + "/")):
    if event == "compile" and isinstance(args[1], str) and args[1].startswith(bundle):
        compiled.append(args[1])
sys.addaudithook(_audit)
sys.path[:0] = [function, layer_site, layer_root]  # /var/task, /opt/python/lib/pythonX.Y/site-packages, /opt/python
sys.path.append(runtime)  # the runtime's boto3 and kin come after
result = {}
"""
_EPILOGUE = r"""
import sysconfig
paths = sysconfig.get_paths()
result["files"] = {name: getattr(module, "__file__", None) for name, module in list(sys.modules.items())}
result["stdlib"] = [paths["stdlib"], paths["platstdlib"]]
result["compiled"] = compiled
print(json.dumps(result))
"""
_IMPORT_SCRIPT = r"""
import importlib, io
modules, compiled_modules = argument
import app
assert app.app.app_name == "weathergif"
for name in modules:
    importlib.import_module(name)
for name in compiled_modules:
    importlib.import_module(name)

from PIL import Image
gradient = Image.merge("RGB", [Image.linear_gradient("L").resize((96, 64)),
                               Image.radial_gradient("L").resize((96, 64)),
                               Image.linear_gradient("L").rotate(90).resize((96, 64))])
for format in ("JPEG", "PNG", "GIF"):
    data = io.BytesIO()
    gradient.save(data, format)
    back = Image.open(io.BytesIO(data.getvalue()))
    back.load()
    assert (back.format, back.size) == (format, (96, 64)), (format, back.format, back.size)
back = Image.open(io.BytesIO(data.getvalue())).convert("RGB")

import numpy as np
pixels = np.asarray(gradient, np.float64)
assert pixels.shape == (64, 96, 3) and abs(float((pixels @ np.ones(3)).mean()) - pixels.sum(axis=2).mean()) < 1e-6
assert len(np.unique(np.asarray(back).reshape(-1, 3), axis=0)) <= 256

from chalicelib.imaging.gif import encode_gif
gif = Image.open(io.BytesIO(encode_gif([gradient, gradient.rotate(180)], delay=100)))
assert gif.n_frames == 2

from chalicelib import messages
message = messages.parse({"type": "please-fetch-amp-image", "imageId": "temps", "layers": ["radar"],
                          "width": 800, "height": 600, "center": "tulsa,ok", "zoom": 4, "validTime": 1})
assert message.width == 800
try:
    messages.parse({"type": "please-fetch-amp-image", "imageId": "temps", "width": "wide"})
except messages.MessageError as error:
    assert "width" in str(error)
else:
    raise AssertionError("an invalid message passed")

import boto3  # the runtime's boto3, with the bundle's urllib3 ahead of the runtime's, as on Lambda
boto3.session.Session().client("s3", region_name="us-east-1")
"""


class InBundle(NamedTuple):
    """What a script run in the unzipped bundle left: its `result` (with "files", every loaded
    module's file, and "compiled", the bundle's sources it compiled), the files the run wrote
    in the bundle's folders, and the folders (function, layer, runtime)."""

    result: dict
    written: list[str]
    roots: tuple[str, str, str]


def runtime_packages(target: Path) -> Path:
    """`target` holding only what Lambda's Python runtime provides, linked from this venv."""
    target.mkdir(parents=True, exist_ok=True)
    site = Path(sysconfig.get_paths()["purelib"])
    for module, distribution in RUNTIME_PACKAGES.items():
        entries = [site / module, site / f"{module}.py", *site.glob(f"{distribution}-*.dist-info")]
        present = [entry for entry in entries if entry.exists()]
        if not any(entry.name in (module, f"{module}.py") for entry in present):
            raise FileNotFoundError(f"{module} is not installed in {site}")
        for entry in present:
            (target / entry.name).symlink_to(entry, target_is_directory=entry.is_dir())
    return target


def install_sdk(target: Path, pins: Mapping[str, str] = RUNTIME_SDK, timeout: float = 600) -> Path:
    """`target` holding these distributions at these versions and nothing else (`pip install --target`,
    wheels only, no other dependency), for `run_in_bundle(..., runtime=target)`. Made once: a folder
    that holds them already is used as it is; processes (xdist workers) that ask at once wait for the
    first (a lock beside it)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    done = target / ".installed.json"
    with open(target.with_name(target.name + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if done.exists() and json.loads(done.read_text()) == dict(pins):
            return target
        shutil.rmtree(target, ignore_errors=True)
        command = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-deps"]
        command += ["--only-binary=:all:", "--target", str(target), *(f"{name}=={v}" for name, v in pins.items())]
        run = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
        if run.returncode != 0:
            raise RuntimeError(f"pip could not install {dict(pins)}:\n{run.stdout[-2000:]}{run.stderr[-3000:]}")
        done.write_text(json.dumps(dict(pins)))
    return target


def _listing(folder: Path) -> set[str]:
    return {str(path) for path in folder.rglob("*")}


def _read_only(folder: Path, writable: bool = False) -> None:
    """As Lambda has /var/task and /opt (or, `writable`, back as they were, to be removed)."""
    for path in [folder, *folder.rglob("*")]:
        if not path.is_symlink():
            mode = path.stat().st_mode
            path.chmod(mode | 0o200 if writable else mode & ~0o222)


# Zips unzipped once per process (a layer's 4,000 files take 1.5 s of CPU to extract), each run
# given a tree of hard links to them: its own folders, the same files.
_UNZIPPED: dict[str, Path] = {}


def _unzipped(path: Path) -> Path:
    """The zip's files, extracted as Lambda unzips them (an executable stays one), once per content."""
    with open(path, "rb") as handle:
        key = hashlib.file_digest(handle, "sha256").hexdigest()
    if key not in _UNZIPPED:
        folder = Path(tempfile.mkdtemp(prefix="weathergif-unzipped-"))
        atexit.register(shutil.rmtree, folder, True)
        with zipfile.ZipFile(path) as archive:
            for info in archive.infolist():
                extracted = Path(archive.extract(info, folder))
                mode = info.external_attr >> 16 & 0o777
                if mode and not info.is_dir():
                    extracted.chmod(mode)
        _UNZIPPED[key] = folder
    return _UNZIPPED[key]


def _linked(source: Path, target: Path) -> None:
    """`target` holding `source`'s folders, and hard links to its files (a later zip's file replaces
    an earlier one's, as when unzipping one over the other)."""
    for folder, _, files in os.walk(source):
        into = target / Path(folder).relative_to(source)
        into.mkdir(exist_ok=True)
        for name in files:
            (into / name).unlink(missing_ok=True)
            os.link(Path(folder) / name, into / name)


def run_in_bundle(
    out: Path,
    script: str,
    argument: object = None,
    timeout: float = 120,
    runtime: Path | None = None,
    env: Mapping[str, str] | None = None,
) -> InBundle | str:
    """Unzip the function to A and the layer to B, both made read-only; run `script` in a fresh
    isolated interpreter that writes no bytecode (-B; PYTHONDONTWRITEBYTECODE=1) with only A, B's
    Lambda path and D (the runtime's boto3 and kin: `runtime`, else this venv's) importable, and
    `env` added to its environment. The script finds `argument` and fills `result`. Returns what it
    left, or the interpreter's error."""
    with tempfile.TemporaryDirectory(prefix="weathergif-bundle-") as temp:
        temp_path = Path(temp)
        function, layer = temp_path / "function", temp_path / "layer"
        function.mkdir()
        layer.mkdir()
        for name, target in ((FUNCTION_ZIP, function), (LAYER_ZIP, layer), (FFMPEG_LAYER_ZIP, layer)):
            if (out / name).exists():
                _linked(_unzipped(out / name), target)
        runtime = runtime or runtime_packages(temp_path / "runtime")
        layer_site = layer / LAYER_SITE
        paths = [str(function), str(layer), str(layer_site), str(layer / "python"), str(runtime)]
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "AWS_DEFAULT_REGION": "us-east-1",
            "LAMBDA_TASK_ROOT": str(function),
            "STAGE": STAGE,
            "POWERTOOLS_SERVICE_NAME": "weathergif",
            "POWERTOOLS_LOG_LEVEL": "WARNING",
            "HOME": temp,
            "PYTHONDONTWRITEBYTECODE": "1",  # ignored under -I: -B says it
            **(env or {}),
        }
        before = _listing(function) | _listing(layer)
        for folder in (function, layer):
            _read_only(folder)
        try:
            run = subprocess.run(
                [sys.executable, "-I", "-S", "-B", "-c", _PRELUDE + script + _EPILOGUE, json.dumps([*paths, argument])],
                cwd=temp,
                env=env,
                capture_output=True,
                text=True,
                timeout=timeout,
            )
        finally:
            for folder in (function, layer):
                _read_only(folder, writable=True)
        written = sorted((_listing(function) | _listing(layer)) - before)
        if run.returncode != 0:
            return f"the bundle's interpreter exited {run.returncode}: {run.stderr.strip()[-3000:]}"
        result = json.loads(run.stdout.strip().splitlines()[-1])
    return InBundle(result, written, (str(function), str(layer), str(runtime)))


def check_imports(out: Path, timeout: float = 120, bytecode: bool = True) -> list[str]:
    """In the unzipped bundle (run_in_bundle), import app and every handler module and use Pillow,
    numpy and the messages. Every module must load from A, B or D (or the standard library), and the
    compiled ones from A or B; nothing may be written in A or B; and (`bytecode`) no source of A
    or B may be compiled: each module loads from its .pyc."""
    ran = run_in_bundle(out, _IMPORT_SCRIPT, [list(HANDLER_MODULES), list(COMPILED_MODULES)], timeout)
    if isinstance(ran, str):
        return [ran]
    result, roots = ran.result, ran.roots
    function, layer = roots[0], roots[1]
    problems = [f"wrote {file} in the bundle" for file in ran.written]
    if bytecode and result["compiled"]:
        names = [os.path.relpath(file, os.path.dirname(function)) for file in result["compiled"]]
        problems.append(f"compiled {len(names)} of the bundle's sources on import: {', '.join(names[:8])}")
    stdlib = tuple(os.path.join(path, "") for path in result["stdlib"])
    for name, file in sorted(result["files"].items()):
        if not file:
            continue
        file = os.path.abspath(file)
        if any(file.startswith(os.path.join(root, "")) for root in roots):
            continue
        if file.startswith(stdlib) and "site-packages" not in Path(file).parts:
            continue
        problems.append(f"{name} loaded from {file}, outside the bundle and the runtime")
    for name in COMPILED_MODULES:
        file = result["files"].get(name) or ""
        if not file.startswith((os.path.join(function, ""), os.path.join(layer, ""))):
            problems.append(f"{name} did not load from the bundle: {file or 'no file'}")
    return problems


# f. the GIF worker's formats: WebP from the bundle, MP4 by the ffmpeg layer's binary ----------

_FORMATS_SCRIPT = r"""
import io, os
os.environ["FFMPEG_BINARY"] = os.path.join(layer, "bin", "ffmpeg")  # /opt/bin/ffmpeg on Lambda
from PIL import Image, ImageDraw
from chalicelib.imaging import mp4
from chalicelib.imaging.animation import encode_animation
frames = []
for i in range(4):
    frame = Image.new("RGB", (96, 64), (30, 60, 110))
    ImageDraw.Draw(frame).ellipse((10 + 8 * i, 10, 50 + 8 * i, 50), fill=(220, 30, 30))
    frames.append(frame)
encoded = encode_animation(frames, ["webp", "mp4"], delay=100, last_delay=400)
assert not encoded.failures, [(f.format, str(f.error)) for f in encoded.failures]
made = {o.format: o.data for o in encoded.outputs}
assert list(made) == ["gif", "webp", "mp4"], list(made)
webp = Image.open(io.BytesIO(made["webp"]))
assert (webp.format, webp.n_frames, webp.size) == ("WEBP", 4, (96, 64))
assert made["mp4"][4:8] == b"ftyp" and b"moov" in made["mp4"][:200] and b"avc1" in made["mp4"]
result["ffmpeg"] = mp4.ffmpeg_path()
"""


def check_formats(out: Path, timeout: float = 120) -> list[str]:
    """In the unzipped bundle with the ffmpeg layer (run_in_bundle), the GIF worker's encoder makes
    the GIF, the WebP (Pillow's libwebp, from the layer) and the MP4 (the ffmpeg layer's binary)."""
    if not (out / FFMPEG_LAYER_ZIP).exists():
        return [f"no {FFMPEG_LAYER_ZIP}"]
    ran = run_in_bundle(out, _FORMATS_SCRIPT, timeout=timeout)
    if isinstance(ran, str):
        return [ran]
    problems = [f"wrote {file} in the bundle" for file in ran.written]
    if ran.result["ffmpeg"] != os.path.join(ran.roots[1], "bin", "ffmpeg"):
        problems.append(f"ran {ran.result['ffmpeg']}, not the layer's ffmpeg")
    return problems


# e. bytecode ------------------------------------------------------------------------------


def check_bytecode(out: Path) -> list[str]:
    """Every .py in both zips has beside it (`__pycache__/NAME.cpython-3XY.pyc`, where the import
    system looks) a .pyc of this Python that is checked-hash (PEP 552 flags 0b11: the import
    system compares the source's hash with it), whose hash is its source's and whose code names
    the path the source has on Lambda (/var/task/..., /opt/...)."""
    problems = []
    for zip_name, archive in _zips(out):
        names = set(archive.namelist())
        root = "/var/task" if zip_name == FUNCTION_ZIP else "/opt"
        for name in sorted(names):
            if not name.endswith(".py"):
                continue
            pyc = importlib.util.cache_from_source(name)
            where = f"{zip_name}:{name}"
            if pyc not in names:
                problems.append(f"{where}: no {pyc}")
                continue
            data, source = archive.read(pyc), archive.read(name)
            flags = int.from_bytes(data[4:8], "little")
            if data[:4] != importlib.util.MAGIC_NUMBER:
                problems.append(f"{where}: {pyc} is not for this Python (magic {data[:4].hex()})")
            elif flags != 0b11:
                kind = {0: "timestamp-based", 0b01: "unchecked-hash"}.get(flags, f"flags {flags}")
                problems.append(f"{where}: {pyc} is {kind}, not checked-hash")
            elif data[8:16] != importlib.util.source_hash(source):
                problems.append(f"{where}: {pyc} is for other source bytes")
            else:
                code = marshal.loads(data[16:])
                if code.co_filename != f"{root}/{name}":
                    problems.append(f"{where}: {pyc} was compiled as {code.co_filename}")
    return problems


# d. sizes -------------------------------------------------------------------------------


class Sizes(NamedTuple):
    zipped: dict[str, int]  # per zip
    unzipped: dict[str, int]

    def __str__(self) -> str:
        parts = [
            f"{name} {self.zipped[name] / 1e6:.2f} MB zipped, {self.unzipped[name] / 1e6:.2f} MB unzipped"
            for name in self.zipped
        ]
        return "; ".join(parts) + f"; together {sum(self.unzipped.values()) / 1e6:.2f} MB unzipped"


def sizes(out: Path) -> Sizes:
    zipped, unzipped = {}, {}
    for name, archive in _zips(out):
        zipped[name] = (out / name).stat().st_size
        unzipped[name] = sum(info.file_size for info in archive.infolist())
    return Sizes(zipped, unzipped)


def check_sizes(out: Path, max_zipped: int = MAX_ZIPPED, max_unzipped: int = MAX_UNZIPPED) -> list[str]:
    """Each zip within the per-upload limit; function and layer unzipped within the total limit."""
    measured = sizes(out)
    print(f"Lambda bundle: {measured}")
    problems = [
        f"{name} is {size:,} bytes zipped; Lambda takes {max_zipped:,}"
        for name, size in measured.zipped.items()
        if size > max_zipped
    ]
    total = sum(measured.unzipped.values())
    if total > max_unzipped:
        layers = "layers" if FFMPEG_LAYER_ZIP in measured.zipped else "layer"
        problems.append(f"function and {layers} are {total:,} bytes unzipped; Lambda takes {max_unzipped:,}")
    if FUNCTION_ZIP not in measured.zipped:
        problems.append(f"no {FUNCTION_ZIP}")
    return problems
