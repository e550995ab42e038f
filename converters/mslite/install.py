"""Set up MindSpore Lite 2.0 for Python 3.11: fetch the wheel, extract its libraries, build the shim, smoke-test.

PyPI has MindSpore Lite only as a cp37 wheel. Its Python wrapper cannot load on 3.11, but its shared
libraries can: `shim/mnv1tk_mslite.cc` gives them a C ABI that `bindings.py` calls with ctypes, in a
child process (`worker.py`), because MindSpore 2.10 and these libraries both ship `libmindspore_core.so`.

Cache layout (`~/.cache/mnv1-tk/mslite-2.0.0`, or `--cache DIR`, or `$MNV1TK_MSLITE_DIR`):
    download/   the wheel, deleted once setup has passed
    dist/       lib/ and include/ from the wheel plus MANIFEST.json; extracted to a temporary
                sibling and renamed, so it is either whole or absent
    shim/       libmnv1tk_mslite.so, compiled to a temporary name and renamed
    READY.json  written last, after the smoke test; without it the next call repairs the cache

The libraries: the converter library holds the converter and the device-side runtime (litert), which
is what runs the `.ms` models, with int8 kernels for full-quant models; `libmindspore_core.so`
holds `Status`. Linking the shim against these two (converter first) needs none of the 2.0 wheel's
extendrt, dnnl or plugin libraries (200 MB), and keeps the converter's PTQ calibration on the
litert runtime, which it requires.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from toolkit.errors import BackendError
from toolkit.fsutil import write_json

VERSION = "2.0.0"
WHEEL = f"mindspore_lite-{VERSION}-cp37-cp37m-manylinux1_x86_64.whl"
PIP_DOWNLOAD = ["download", f"mindspore-lite=={VERSION}", "--no-deps", "--only-binary=:all:", "--python-version", "3.7"]
# Link order matters: the converter library first, so that Model/MSTensor resolve to its litert runtime.
LINKED_LIBRARIES = ("libmindspore_converter.so", "libmindspore_core.so")
LIBRARIES = LINKED_LIBRARIES + (
    "libmslite_converter_plugin.so", "libmindspore_glog.so.0",
    "libopencv_core.so.4.5", "libopencv_imgcodecs.so.4.5", "libopencv_imgproc.so.4.5",
)
WHEEL_LIB, WHEEL_INCLUDE = "mindspore_lite/lib/", "mindspore_lite/include/"
SHIM_SOURCE = Path(__file__).with_name("shim") / "mnv1tk_mslite.cc"
SHIM_NAME = "libmnv1tk_mslite.so"
CXXFLAGS = ("-std=c++17", "-O2", "-fPIC", "-shared", "-Wall")
ENV_DIR = "MNV1TK_MSLITE_DIR"
ENV_HOME = "MSLITE_HOME"


def default_cache() -> Path:
    """`$MNV1TK_MSLITE_DIR`, else `$XDG_CACHE_HOME/mnv1-tk/mslite-2.0.0` (`~/.cache/...`)."""
    if os.environ.get(ENV_DIR):
        return Path(os.environ[ENV_DIR]).expanduser()
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "mnv1-tk" / f"mslite-{VERSION}"


@dataclass(frozen=True)
class Installation:
    """Where one MindSpore Lite setup lives."""

    root: Path

    @property
    def dist(self) -> Path:
        return self.root / "dist"

    @property
    def lib_dir(self) -> Path:
        return self.dist / "lib"

    @property
    def include_dir(self) -> Path:
        return self.dist / "include"

    @property
    def manifest(self) -> Path:
        return self.dist / "MANIFEST.json"

    @property
    def shim(self) -> Path:
        return self.root / "shim" / SHIM_NAME

    @property
    def marker(self) -> Path:
        return self.root / "READY.json"

    @property
    def download_dir(self) -> Path:
        return self.root / "download"


@dataclass
class SetupReport:
    """What `setup_mslite` did: one entry per step with its duration, and the cache size."""

    root: Path
    backend: str
    steps: list[dict] = field(default_factory=list)
    seconds: float = 0.0
    cache_bytes: int = 0

    def to_dict(self) -> dict:
        return {"root": str(self.root), "backend": self.backend, "steps": self.steps,
                "seconds": round(self.seconds, 2), "cache_mb": round(self.cache_bytes / 2**20, 1)}


def shim_fingerprint(extra: str = "") -> str:
    """Changes whenever the shim source or its build flags change, so an old shim gets rebuilt."""
    digest = hashlib.sha256(SHIM_SOURCE.read_bytes())
    digest.update(" ".join(CXXFLAGS + LINKED_LIBRARIES).encode() + extra.encode())
    return digest.hexdigest()


def is_ready(install: Installation, fingerprint: str | None = None) -> bool:
    """Cheap check run before every use: marker present, same shim source, every library whole."""
    try:
        marker = json.loads(install.marker.read_text())
    except (OSError, ValueError):
        return False
    return marker.get("shim") == (fingerprint or shim_fingerprint()) and install.shim.is_file() and \
        _dist_is_whole(install)


# ---------------------------------------------------------------------------------------------- steps

def find_compiler() -> str:
    """The C++ compiler: `$CXX` or g++."""
    name = os.environ.get("CXX", "g++")
    path = shutil.which(name)
    if path is None:
        raise BackendError(f"C++ compiler '{name}' not found; it builds the MindSpore Lite shim",
                           "install it with `sudo apt-get install g++`, or set CXX to a C++17 compiler")
    return path


def fetch_wheel(download_dir: Path) -> Path:
    """`pip download` the MindSpore Lite wheel into `download_dir`, unless it is there already
    (left by an interrupted setup, or put there by hand on a machine without PyPI)."""
    wheel = download_dir / WHEEL
    if wheel.is_file():
        return wheel
    download_dir.mkdir(parents=True, exist_ok=True)
    result = subprocess.run([sys.executable, "-m", "pip", *PIP_DOWNLOAD, "--dest", str(download_dir),
                             "--disable-pip-version-check", "--progress-bar", "off"],
                            capture_output=True, text=True)
    if result.returncode != 0 or not wheel.is_file():
        lines = [line.strip() for line in result.stderr.splitlines() if line.strip()]
        errors = [line.removeprefix("ERROR: ") for line in lines if line.startswith("ERROR:")]
        reason = (errors or lines or [f"pip exited with {result.returncode}"])[-1]
        raise BackendError(f"cannot download the mindspore-lite {VERSION} wheel from PyPI: {reason}",
                           f"check the network, proxy or PIP_INDEX_URL, or put {WHEEL} into {download_dir} "
                           "and run `mnv1-tk setup mslite` again")
    return wheel


def _wheel_members(archive: zipfile.ZipFile) -> list[zipfile.ZipInfo]:
    members = [info for info in archive.infolist() if not info.is_dir() and (
        info.filename.startswith(WHEEL_INCLUDE) or info.filename[len(WHEEL_LIB):] in LIBRARIES)]
    found = {info.filename[len(WHEEL_LIB):] for info in members if info.filename.startswith(WHEEL_LIB)}
    missing = sorted(set(LIBRARIES) - found)
    if missing:
        raise BackendError(f"the wheel lacks {', '.join(missing)}", "delete the cache directory and run setup again")
    return members


def extract_libraries(wheel: Path, install: Installation) -> dict[str, int]:
    """Extract the needed libraries and headers into `dist/`, via a temporary sibling and a rename.

    zipfile checks each member's CRC while reading, so a truncated or corrupt wheel fails here.
    """
    for stale in install.root.glob(".dist-*"):  # left by an interrupted run
        shutil.rmtree(stale, ignore_errors=True)
    staging = Path(tempfile.mkdtemp(prefix=".dist-", dir=install.root))
    try:
        files = {}
        with zipfile.ZipFile(wheel) as archive:
            for info in _wheel_members(archive):
                relative = ("lib/" + info.filename[len(WHEEL_LIB):] if info.filename.startswith(WHEEL_LIB)
                            else "include/" + info.filename[len(WHEEL_INCLUDE):])
                target = staging / relative
                target.parent.mkdir(parents=True, exist_ok=True)
                with archive.open(info) as source, open(target, "wb") as sink:
                    shutil.copyfileobj(source, sink, 1 << 20)
                if target.stat().st_size != info.file_size:
                    raise BackendError(f"extracting {info.filename} gave {target.stat().st_size} bytes, "
                                       f"expected {info.file_size}", "check the free disk space, then run setup again")
                files[relative] = info.file_size
        write_json(staging / "MANIFEST.json", {"wheel": WHEEL, "files": files})
        staging.chmod(0o755)  # mkdtemp makes it private
        if install.dist.exists():
            shutil.rmtree(install.dist)
        os.replace(staging, install.dist)
        return files
    except (zipfile.BadZipFile, EOFError, OSError) as exc:
        wheel.unlink(missing_ok=True)  # a damaged download: the next run fetches it again
        raise BackendError(f"cannot extract {wheel.name}: {exc}",
                           "check the free disk space and run `mnv1-tk setup mslite` again") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def shim_command(compiler: str, include_dir: Path, lib_dirs: list[Path], libraries: tuple[str, ...],
                 output: Path, *, with_converter: bool) -> list[str]:
    """The g++ command line for the shim.

    RPATH (not RUNPATH: --disable-new-dtags) so that the library directory also serves the
    dependencies of the linked libraries, which carry no RPATH of their own.
    """
    command = [compiler, *CXXFLAGS, f"-I{include_dir}"]
    if with_converter:
        command.append("-DMNV1_WITH_CONVERTER")
    command += [str(SHIM_SOURCE), "-o", str(output)]
    command += [f"-L{d}" for d in lib_dirs] + [f"-l:{name}" for name in libraries]
    command += ["-Wl,--disable-new-dtags", *(f"-Wl,-rpath,{d}" for d in lib_dirs), "-Wl,--no-undefined"]
    return command


def build_shim(command: list[str], output: Path) -> Path:
    """Compile to a temporary name next to `output`, then rename."""
    output.parent.mkdir(parents=True, exist_ok=True)
    temporary = output.with_name(f".{output.name}.{os.getpid()}.part")
    command = [str(temporary) if arg == str(output) else arg for arg in command]
    try:
        result = subprocess.run(command, capture_output=True, text=True)
        if result.returncode != 0:
            errors = [line for line in result.stderr.splitlines() if "error" in line] or result.stderr.splitlines()
            raise BackendError(f"building the MindSpore Lite shim failed: {(errors or ['?'])[-1].strip()}",
                               "check that g++ supports C++17 (g++ 7 or newer)")
        os.replace(temporary, output)
    finally:
        temporary.unlink(missing_ok=True)
    return output


def directory_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


@contextlib.contextmanager
def _locked(root: Path) -> Iterator[None]:
    """One setup at a time per cache directory (two commands may start at once)."""
    root.mkdir(parents=True, exist_ok=True)
    with open(root / ".lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


class _Steps:
    """Runs named steps with a spinner and records how long each took."""

    def __init__(self, report: SetupReport, quiet: bool):
        from rich.console import Console

        self.report = report
        self.console = Console(stderr=True, quiet=quiet)

    @contextlib.contextmanager
    def step(self, name: str, detail: str = "") -> Iterator[dict]:
        entry = {"step": name, "detail": detail}
        start = time.perf_counter()
        with self.console.status(f"MindSpore Lite: {name}..."):
            yield entry
        entry["seconds"] = round(time.perf_counter() - start, 2)
        self.report.steps.append(entry)
        detail = f": {entry['detail']}" if entry["detail"] else ""
        self.console.print(f"[green]✓[/] {name} ({entry['seconds']:.1f} s){detail}")


def setup_wheel(install: Installation, *, force: bool = False, quiet: bool = False) -> SetupReport:
    """Make `install` ready (idempotent); each step is verified before the next starts."""
    from converters.mslite.backends import WheelBackend
    from converters.mslite.smoke import smoke_test

    report = SetupReport(install.root, "wheel")
    steps = _Steps(report, quiet)
    start = time.perf_counter()
    with _locked(install.root):
        fingerprint = shim_fingerprint()
        if not force and is_ready(install, fingerprint):
            report.steps.append({"step": "check", "detail": "already set up", "seconds": 0.0})
        else:
            install.marker.unlink(missing_ok=True)
            compiler = find_compiler()  # before a download that would be of no use without it
            if force or not _dist_is_whole(install):
                with steps.step("download wheel") as entry:
                    wheel = fetch_wheel(install.download_dir)
                    entry["detail"] = f"{wheel.name}, {wheel.stat().st_size / 2**20:.0f} MB"
                with steps.step("extract libraries") as entry:
                    files = extract_libraries(wheel, install)
                    entry["detail"] = f"{len(files)} files, {sum(files.values()) / 2**20:.0f} MB"
            with steps.step("build shim", SHIM_SOURCE.name):
                build_shim(shim_command(compiler, install.dist, [install.lib_dir], LINKED_LIBRARIES,
                                        install.shim, with_converter=True), install.shim)
            with steps.step("smoke test") as entry:
                entry["detail"] = smoke_test(WheelBackend(install))
            write_json(install.marker, {"mindspore_lite": VERSION, "shim": fingerprint})
            shutil.rmtree(install.download_dir, ignore_errors=True)
    report.seconds = time.perf_counter() - start
    report.cache_bytes = directory_size(install.root)
    return report


def _dist_is_whole(install: Installation) -> bool:
    try:
        files = json.loads(install.manifest.read_text())["files"]
    except (OSError, ValueError, KeyError):
        return False
    return all((install.dist / name).is_file() and (install.dist / name).stat().st_size == size
               for name, size in files.items())


def setup_official(home: Path, install: Installation, *, force: bool = False, quiet: bool = False) -> SetupReport:
    """Check an official package at `home`, build the runtime shim against it, smoke-test converter_lite
    and benchmark. The shim lives in the cache, one per package (`official-<hash>/`)."""
    from converters.mslite.backends import OfficialBackend
    from converters.mslite.smoke import smoke_test

    home = Path(home).expanduser().resolve()
    folder = install.root / f"official-{hashlib.sha256(str(home).encode()).hexdigest()[:12]}"
    backend = OfficialBackend(home, folder / SHIM_NAME)
    backend.check_layout()
    report = SetupReport(folder, backend.name)
    steps = _Steps(report, quiet)
    start = time.perf_counter()
    marker = folder / "READY.json"
    fingerprint = shim_fingerprint(str(home))
    with _locked(folder):
        ready = marker.is_file() and backend.shim.is_file() and \
            json.loads(marker.read_text()).get("shim") == fingerprint
        if ready and not force:
            report.steps.append({"step": "check", "detail": "already set up", "seconds": 0.0})
        else:
            marker.unlink(missing_ok=True)
            with steps.step("build shim", f"against {home}/runtime/lib/libmindspore-lite.so"):
                build_shim(official_shim_command(backend, find_compiler()), backend.shim)
            with steps.step("smoke test") as entry:
                entry["detail"] = smoke_test(backend)
            write_json(marker, {"mindspore_lite": str(home), "shim": fingerprint})
    report.seconds = time.perf_counter() - start
    report.cache_bytes = directory_size(folder)
    return report


def official_shim_command(backend, compiler: str) -> list[str]:
    """The runtime-only shim of an official package (its converter is the converter_lite binary)."""
    return shim_command(compiler, backend.runtime_include, backend.runtime_lib_dirs, ("libmindspore-lite.so",),
                        backend.shim, with_converter=False)


def setup_mslite(cache: str | Path | None = None, *, force: bool = False, quiet: bool = False) -> SetupReport:
    """`mnv1-tk setup mslite`: set up the official package in `$MSLITE_HOME` if set, else the PyPI wheel.

    cache: the cache directory (default `default_cache()`). Safe to run again: a finished setup is
    only checked, an interrupted one is repaired.
    """
    install = Installation(Path(cache).expanduser() if cache else default_cache())
    if os.environ.get(ENV_HOME):
        return setup_official(Path(os.environ[ENV_HOME]), install, force=force, quiet=quiet)
    return setup_wheel(install, force=force, quiet=quiet)


def ensure_mslite(*, quiet: bool = False):
    """The ready MindSpore Lite backend for `convert` and `validate`; runs the setup on first use."""
    from converters.mslite.backends import WheelBackend

    install = Installation(default_cache())
    if os.environ.get(ENV_HOME):
        report = setup_official(Path(os.environ[ENV_HOME]), install, quiet=True)
        from converters.mslite.backends import OfficialBackend

        return OfficialBackend(Path(os.environ[ENV_HOME]).expanduser().resolve(), report.root / SHIM_NAME)
    if not is_ready(install):
        from rich.console import Console

        Console(stderr=True, quiet=quiet).print(
            f"MindSpore Lite is not set up yet: running `mnv1-tk setup mslite` once "
            f"(downloads the {VERSION} wheel, ~170 MB; keeps ~100 MB in {install.root})")
        setup_wheel(install, quiet=quiet)
    return WheelBackend(install)


def setup_command(cache: str | Path | None, *, force: bool = False, as_json: bool = False) -> SetupReport:
    """`mnv1-tk setup mslite`: run the setup, then print its report as a table or as JSON."""
    from rich.console import Console
    from rich.table import Table

    report = setup_mslite(cache, force=force, quiet=as_json)
    console = Console()
    if as_json:
        console.print_json(json.dumps(report.to_dict()))
        return report
    table = Table(title=f"MindSpore Lite ({report.backend}) in {report.root}")
    for column in ("step", "seconds", "detail"):
        table.add_column(column)
    for step in report.steps:
        table.add_row(step["step"], f"{step['seconds']:.1f}", step["detail"])
    console.print(table)
    console.print(f"ready in {report.seconds:.1f} s; cache {report.cache_bytes / 2**20:.0f} MB")
    if cache and Path(cache).expanduser().resolve() != default_cache().resolve():
        console.print(f"convert and validate use {default_cache()}: export {ENV_DIR}={cache} to use this one")
    return report
