"""The bundle's bytecode: the zips Chalice deploys, each .py with its checked-hash .pyc beside it.

On Lambda the function (/var/task) and its layers (/opt) are read-only and Chalice zips
sources only, so every cold start compiles every module it imports from them. This step
builds the two zips with Chalice's own packagers (`AppOnlyDeploymentPackager`: app.py,
chalicelib and Chalice's chalice/app.py; `LayerDeploymentPackager`: requirements.txt and
vendor/, as `automatic_layer` has it), where Chalice itself keeps them: in
.chalice/deployments, named by a hash of what went in. It then adds to each zip, for every
.py in it, `__pycache__/NAME.cpython-3XY.pyc` compiled from the very bytes the zip holds,
in place of whatever __pycache__ entries it had. `chalice deploy` and `chalice package`
compute the same names from the same inputs and say "Reusing existing ... deployment
package": they ship these.

The .pyc files are checked-hash ones (PEP 552): Python compares the hash of the source
beside each with the one in it, so one can never run stale code whatever the mtimes
Lambda's unzip gives; a source that changed is compiled, as without this step. Sources
that change after this step make new zip names, which Chalice builds from scratch,
without bytecode: run this step again before deploying (`python -m deploy bytecode
STAGE`; `python -m deploy deploy` and `package` run it).
"""

from __future__ import annotations

import importlib.util
import os
import py_compile
import shutil
import subprocess
import sys
import tempfile
import warnings
import zipfile
from collections.abc import Iterable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from chalice.deploy.packager import BaseLambdaDeploymentPackager

# The interpreter compiling is the runtime's Python (Chalice packages for the Python running
# it); its cache tag names the .pyc files and its magic number heads them.
CACHE_TAG = sys.implementation.cache_tag  # "cpython-311"
PYTHON = f"python{sys.version_info.major}.{sys.version_info.minor}"
FLAGS_CHECKED_HASH = 0b11  # PEP 552: hash-based, check_source
# Where Lambda unzips them: the function's zip in /var/task, a layer's in /opt. The
# .pyc files name their sources there (tracebacks; the same bytes whatever the build folder).
FUNCTION_ROOT = "/var/task"
LAYER_ROOT = "/opt"


@dataclass(frozen=True)
class Bundle:
    """One zip Chalice deploys, and where Lambda unzips it."""

    kind: str  # "app", "layer" or "function" (app and dependencies in one zip: no automatic_layer)
    path: Path
    root: str  # FUNCTION_ROOT or LAYER_ROOT

    def __str__(self) -> str:
        return f"{self.kind} zip {self.path.name}"


@dataclass(frozen=True)
class Added:
    bundle: Bundle
    sources: int  # .py files in the zip
    compiled: int  # .pyc files added now (0: it carried them already)
    dropped: int  # __pycache__ entries it had that were not ours (a working tree's)
    failed: tuple[str, ...]  # sources that do not compile on this Python (left without a .pyc)
    size_before: int
    size_after: int

    def __str__(self) -> str:
        if not self.compiled and not self.failed:
            return f"{self.bundle}: its {self.sources} modules carry their bytecode already"
        text = (
            f"{self.bundle}: {self.compiled} of {self.sources} modules compiled "
            f"({self.size_before / 1e6:.1f} MB -> {self.size_after / 1e6:.1f} MB zipped)"
        )
        if self.dropped:
            text += f"; {self.dropped} stale __pycache__ entries dropped"
        if self.failed:
            text += f"; {len(self.failed)} do not compile on {PYTHON} (left as sources): {', '.join(self.failed[:5])}"
        return text


def _packagers(project: Path, stage: str) -> list[tuple[str, BaseLambdaDeploymentPackager, str]]:
    """Chalice's packagers for the stage, made as chalice deploy and chalice package make them
    (chalice/deploy/deployer.py, create_build_stage); with where Lambda unzips each one's zip."""
    from chalice.cli.factory import CLIFactory
    from chalice.deploy.packager import (
        AppOnlyDeploymentPackager,
        DependencyBuilder,
        LambdaDeploymentPackager,
        LayerDeploymentPackager,
        PipRunner,
        SubprocessPip,
    )
    from chalice.utils import UI, OSUtils

    config = CLIFactory(str(project)).create_config_obj(chalice_stage_name=stage)
    if config.lambda_python_version != PYTHON:
        raise SystemExit(
            f"Chalice packages for {config.lambda_python_version} here, and bytecode is for the Python that "
            f"compiles it ({PYTHON}): run this with the Python chalice runs on"
        )
    osutils, ui = OSUtils(), UI()
    builder = DependencyBuilder(
        osutils=osutils,
        pip_runner=PipRunner(pip=SubprocessPip(osutils=osutils), osutils=osutils),
        architecture=config.lambda_architecture,
    )
    architecture = config.lambda_architecture
    if not config.automatic_layer:
        return [("function", LambdaDeploymentPackager(osutils, builder, ui, architecture), FUNCTION_ROOT)]
    return [
        ("app", AppOnlyDeploymentPackager(osutils, builder, ui, architecture), FUNCTION_ROOT),
        ("layer", LayerDeploymentPackager(osutils, builder, ui, architecture), LAYER_ROOT),
    ]


def bundles(project: Path, stage: str) -> list[Bundle]:
    """The zips chalice deploy would use for the stage now (built or not): names only."""
    return [
        Bundle(kind, Path(packager.deployment_package_filename(str(project), PYTHON)), root)
        for kind, packager, root in _packagers(project, stage)
    ]


def build(project: Path, stage: str) -> list[Bundle]:
    """The zips, built by Chalice's packagers (or reused, as Chalice reuses them)."""
    from chalice.deploy.packager import EmptyPackageError

    load_app_as_chalice_does(project, stage)
    made = []
    for kind, packager, root in _packagers(project, stage):
        try:
            path = packager.create_deployment_package(str(project), PYTHON)
        except EmptyPackageError:  # no requirements, no vendor/: Chalice deploys no layer
            continue
        made.append(Bundle(kind, Path(path), root))
    return made


def load_app_as_chalice_does(project: Path, stage: str) -> None:
    """Import app.py as chalice deploy and chalice package do before they package, in a process
    of its own. The app zip's name hashes every file under chalicelib/, and that import writes
    the working tree's chalicelib/**/__pycache__ (Chalice zips them too; add_to_zip replaces
    them): once written here, Chalice's import finds them current and the name it computes is
    the one this step built. (A fresh clone has none; a working tree, whatever ran last.)"""
    load = (
        "import sys\n"
        "from chalice.cli.factory import CLIFactory\n"
        "CLIFactory(sys.argv[1]).create_config_obj(chalice_stage_name=sys.argv[2]).chalice_app\n"
    )
    subprocess.run([sys.executable, "-c", load, str(project), stage], cwd=project, check=True)


def add_bytecode(project: Path, stage: str) -> list[Added]:
    """Build the stage's zips (or reuse them) and give every module in them its bytecode."""
    return [add_to_zip(bundle) for bundle in build(project, stage)]


# The zips -------------------------------------------------------------------------------


def pyc_name(source: str) -> str:
    """The .pyc the import system looks for beside `source` (a zip entry name)."""
    path = PurePosixPath(source)
    return str(path.parent / "__pycache__" / f"{path.stem}.{CACHE_TAG}.pyc").removeprefix("./")


def is_ours(pyc: bytes, source: bytes) -> bool:
    """`pyc` is a checked-hash .pyc of this Python for exactly `source`."""
    return (
        len(pyc) >= 16
        and pyc[:4] == importlib.util.MAGIC_NUMBER
        and int.from_bytes(pyc[4:8], "little") == FLAGS_CHECKED_HASH
        and pyc[8:16] == importlib.util.source_hash(source)
    )


def sources(names: Iterable[str]) -> list[str]:
    return [name for name in names if name.endswith(".py") and not name.endswith("/")]


def missing(path: Path) -> list[str]:
    """The sources in the zip at `path` without a checked-hash .pyc of their bytes beside them."""
    with zipfile.ZipFile(path) as archive:
        return _missing(archive)


def _missing(archive: zipfile.ZipFile) -> list[str]:
    names = set(archive.namelist())
    return [
        name
        for name in sources(archive.namelist())
        if pyc_name(name) not in names or not is_ours(archive.read(pyc_name(name)), archive.read(name))
    ]


def _in_pycache(name: str) -> bool:
    return f"/{name}".rsplit("/", 2)[-2:-1] == ["__pycache__"]


def _compile(job: tuple[str, str, str]) -> tuple[str, bytes | str]:
    """Compile the source file `file` (a zip entry's bytes) as `shown` (its path on Lambda):
    the .pyc's bytes, or why it does not compile."""
    name, file, shown = job
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # invalid escapes and the like: the package's business
            py_compile.compile(
                file,
                cfile=file + "c",
                dfile=shown,
                doraise=True,
                invalidation_mode=py_compile.PycInvalidationMode.CHECKED_HASH,
            )
    except py_compile.PyCompileError as error:
        return name, f"{error.exc_type_name}: {error.exc_value}"
    return name, Path(file + "c").read_bytes()


def add_to_zip(bundle: Bundle) -> Added:
    """Rewrite the zip at its path (same name) with a .pyc for every .py, compiled from the bytes
    it holds. Its own entries keep their bytes, order and attributes; __pycache__ entries that are
    not ours (a working tree's, zipped by Chalice with chalicelib) go. A zip with none to drop or
    replace (the layer's, made of wheels) gets its .pyc files appended, its entries as they were
    compressed: rewriting them all was most of this step's time."""
    size_before = bundle.path.stat().st_size
    with zipfile.ZipFile(bundle.path) as archive:
        names = archive.namelist()
        wanted = sources(names)
        ours = {pyc_name(name) for name in wanted}
        foreign = [name for name in names if _in_pycache(name) and name not in ours]
        if not foreign and not _missing(archive):
            return Added(bundle, len(wanted), 0, 0, (), size_before, size_before)
        with tempfile.TemporaryDirectory(prefix="weathergif-bytecode-") as temp:
            jobs = []
            for number, name in enumerate(wanted):
                file = os.path.join(temp, f"{number}.py")
                Path(file).write_bytes(archive.read(name))
                jobs.append((name, file, f"{bundle.root}/{name}"))
            with ProcessPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
                compiled = dict(pool.map(_compile, jobs, chunksize=64))
        failed = tuple(sorted(name for name, result in compiled.items() if isinstance(result, str)))
        partial = bundle.path.with_name(bundle.path.name + ".bytecode")
        if foreign or ours & set(names):  # entries to drop or to replace: a new zip
            with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED) as target:
                for info in archive.infolist():
                    if info.filename in ours or info.filename in foreign:
                        continue
                    target.writestr(info, archive.read(info), compress_type=zipfile.ZIP_DEFLATED)
                    _add_pyc(target, info, compiled.get(info.filename))
        else:  # only .pyc files to add: after the zip's entries, which are not compressed again
            shutil.copyfile(bundle.path, partial)
            with zipfile.ZipFile(partial, "a", zipfile.ZIP_DEFLATED) as target:
                for info in archive.infolist():
                    _add_pyc(target, info, compiled.get(info.filename))
    os.replace(partial, bundle.path)
    return Added(
        bundle,
        len(wanted),
        len(wanted) - len(failed),
        len(foreign),
        failed,
        size_before,
        bundle.path.stat().st_size,
    )


def _add_pyc(target: zipfile.ZipFile, source: zipfile.ZipInfo, compiled: bytes | str | None) -> None:
    """The .pyc compiled from `source` (if it compiled), with the source's date and attributes."""
    if isinstance(compiled, bytes):
        pyc = zipfile.ZipInfo(pyc_name(source.filename), date_time=source.date_time)
        pyc.external_attr, pyc.create_system = source.external_attr, source.create_system
        target.writestr(pyc, compiled, compress_type=zipfile.ZIP_DEFLATED)


def check(paths: Iterable[Path]) -> list[str]:
    """What would run from source in these zips: each source without its bytecode."""
    problems = []
    for path in paths:
        lacking = missing(path)
        if lacking:
            problems.append(f"{path.name}: {len(lacking)} modules without bytecode ({', '.join(lacking[:3])}, ...)")
    return problems
