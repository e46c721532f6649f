"""The locks: requirements.txt (what the Lambda bundle holds) and requirements-dev.txt (the venv) pin
the whole dependency tree of requirements.in and requirements-dev.in, agree with each other and with
the .in files, and are what this venv has installed. `make lock` writes them; a failure here names
what to run."""

from __future__ import annotations

import re
from importlib import metadata
from pathlib import Path

import pytest
from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parent.parent
LAMBDA_IN, LAMBDA_LOCK = ROOT / "requirements.in", ROOT / "requirements.txt"
DEV_IN, DEV_LOCK = ROOT / "requirements-dev.in", ROOT / "requirements-dev.txt"
# What Lambda's Python runtime provides: left out of the bundle (tests/bundle.py RUNTIME_PACKAGES).
RUNTIME = {"boto3", "botocore", "s3transfer", "jmespath", "python-dateutil", "six", "urllib3"}


def requirements(path: Path) -> list[Requirement]:
    """The requirements a requirements file names, following its -r (not -c: constraints add none)."""
    found = []
    for line in path.read_text().splitlines():
        line = line.split(" #")[0].strip()
        if not line or line.startswith("#") or line.startswith("-c "):
            continue
        if line.startswith("-r "):
            found += requirements(path.parent / line[3:].strip())
            continue
        found.append(Requirement(line))
    return found


def pins(path: Path) -> dict[str, str]:
    """{canonical name: version} of a lock."""
    found = {}
    for requirement in requirements(path):
        [spec] = requirement.specifier
        assert spec.operator == "==", f"{path.name}: {requirement} is not pinned"
        found[canonicalize_name(requirement.name)] = spec.version
    return found


def wanted_extras(path: Path) -> dict[str, set[str]]:
    extras: dict[str, set[str]] = {}
    for requirement in requirements(path):
        extras.setdefault(canonicalize_name(requirement.name), set()).update(requirement.extras)
    return extras


@pytest.mark.parametrize(("source", "lock"), [(LAMBDA_IN, LAMBDA_LOCK), (DEV_IN, DEV_LOCK)], ids=["lambda", "dev"])
def test_each_requirement_is_pinned_in_its_lock_at_a_version_it_allows(source, lock):
    locked = pins(lock)
    for requirement in requirements(source):
        name = canonicalize_name(requirement.name)
        assert name in locked, f"{requirement} of {source.name} is not in {lock.name}: run `make lock`"
        assert requirement.specifier.contains(locked[name], prereleases=True), (
            f"{lock.name} pins {name}=={locked[name]}, which {source.name}'s {requirement} does not allow: run `make lock`"
        )


def test_the_dev_lock_holds_the_lambda_lock_as_it_is():
    dev = pins(DEV_LOCK)
    for name, version in pins(LAMBDA_LOCK).items():
        assert dev.get(name) == version, (
            f"{name}: {version} for Lambda, {dev.get(name)} in development: run `make lock`"
        )


def test_the_lambda_lock_leaves_the_runtimes_sdk_out():
    """boto3 and botocore are the runtime's (the bundle runs on the SDK Lambda ships: see test_sdk.py)."""
    assert not {"boto3", "botocore", "s3transfer"} & set(pins(LAMBDA_LOCK))


@pytest.mark.parametrize(("source", "lock"), [(LAMBDA_IN, LAMBDA_LOCK), (DEV_IN, DEV_LOCK)], ids=["lambda", "dev"])
def test_each_lock_holds_its_whole_tree(source, lock):
    """Every dependency of every locked package (as its installed metadata says, markers evaluated for
    this Python, extras followed) is itself locked: nothing is left for pip to choose on the day."""
    locked, extras = pins(lock), wanted_extras(source)
    environment = default_environment()
    missing = []
    pending = list(locked)
    seen_extras = {name: set(found) for name, found in extras.items()}
    while pending:
        name = pending.pop()
        for line in metadata.requires(name) or []:
            requirement = Requirement(line)
            asked = seen_extras.get(name, set())
            if requirement.marker and not any(
                requirement.marker.evaluate({**environment, "extra": extra}) for extra in asked | {""}
            ):
                continue
            dependency = canonicalize_name(requirement.name)
            if dependency not in locked:
                missing.append(f"{name} needs {requirement}")
                continue
            if not requirement.specifier.contains(locked[dependency], prereleases=True):
                missing.append(f"{name} needs {requirement}; the lock has {locked[dependency]}")
            if requirement.extras - seen_extras.get(dependency, set()):
                seen_extras.setdefault(dependency, set()).update(requirement.extras)
                pending.append(dependency)
    assert not missing, f"{lock.name} is not whole: {missing}: run `make lock`"


def test_this_venv_holds_the_lock():
    """What is installed is what is locked (a venv made before the lock changed: `make` installs anew)."""
    wrong = []
    for name, version in pins(DEV_LOCK).items():
        try:
            installed = metadata.version(name)
        except metadata.PackageNotFoundError:
            wrong.append(f"{name} is not installed")
            continue
        if Version(installed) != Version(version):
            wrong.append(f"{name} {installed}, locked {version}")
    assert not wrong, f"the venv is not the lock: {wrong}: remove .venv/.installed and run make"


def test_the_makefile_installs_the_lock_and_nothing_beside_it():
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"pip install [^\n]*--no-deps -r requirements-dev\.txt", makefile)
    assert "$(STAMP): requirements.txt requirements-dev.txt" in makefile
    for line in (ROOT / "requirements-dev.txt").read_text().splitlines()[:8]:
        if "pip-compile" in line and "--output-file" in line:
            break
    else:
        pytest.fail("requirements-dev.txt does not say it was written by pip-compile (make lock)")
