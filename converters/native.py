"""Native backends installed into the user cache: the one shape `setup mslite` and `setup qnn` share.

A backend ships as a PyPI wheel whose shared libraries we use without its Python package. Setting
one up is the same four steps for each, every step verified before the next starts:

    download   `pip download` the pinned wheel into `<cache>/download/` (kept if put there by hand)
    extract    the members the backend needs, into a temporary `.dist-*` sibling, with a
               MANIFEST.json of their sizes, then renamed to `dist/`: whole or absent
    build      backend-specific (the MindSpore Lite shim), or nothing
    smoke test a tiny model through the real libraries; READY.json is written after it, last

`is_whole` re-checks the manifest cheaply before every use; a cache without READY.json is repaired
by the next run. One setup at a time per cache directory (`locked`).
"""

from __future__ import annotations

import contextlib
import fcntl
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
from typing import Callable, Iterator

from toolkit.errors import BackendError
from toolkit.fsutil import write_json


@dataclass(frozen=True)
class Wheel:
    """A pinned PyPI wheel and the file name pip saves it under."""

    name: str  # e.g. "onnxruntime-qnn"
    version: str
    filename: str
    pip_options: tuple[str, ...] = ()  # e.g. ("--python-version", "3.7") for another interpreter's wheel
    setup_command: str = ""  # what the user runs again, e.g. "mnv1-tk setup qnn"

    @property
    def requirement(self) -> str:
        return f"{self.name}=={self.version}"


def user_cache(env_var: str, folder: str) -> Path:
    """`$<env_var>`, else `$XDG_CACHE_HOME/mnv1-tk/<folder>` (`~/.cache/...`)."""
    if os.environ.get(env_var):
        return Path(os.environ[env_var]).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "mnv1-tk" / folder


def fetch_wheel(wheel: Wheel, download_dir: Path) -> Path:
    """`pip download` the wheel into `download_dir`, unless it is there already."""
    path = download_dir / wheel.filename
    if path.is_file():
        return path
    download_dir.mkdir(parents=True, exist_ok=True)
    result = subprocess.run([sys.executable, "-m", "pip", "download", wheel.requirement, "--no-deps",
                             "--only-binary=:all:", *wheel.pip_options, "--dest", str(download_dir),
                             "--disable-pip-version-check", "--progress-bar", "off"], capture_output=True, text=True)
    if result.returncode != 0 or not path.is_file():
        lines = [line.strip() for line in result.stderr.splitlines() if line.strip()]
        errors = [line.removeprefix("ERROR: ") for line in lines if line.startswith("ERROR:")]
        reason = (errors or lines or [f"pip exited with {result.returncode}"])[-1]
        raise BackendError(f"cannot download the {wheel.name} {wheel.version} wheel from PyPI: {reason}",
                           f"check the network, proxy or PIP_INDEX_URL, or put {wheel.filename} into {download_dir} "
                           f"and run `{wheel.setup_command}` again")
    return path


def extract(wheel: Path, dist: Path, place: Callable[[str], str | None], required: tuple[str, ...],
            setup_command: str) -> dict[str, int]:
    """Extract the wheel members that `place(member)` maps to a path (relative to `dist`), via a
    temporary sibling and a rename; `required` are paths under `dist` that must be among them.

    zipfile checks each member's CRC while reading, so a truncated or corrupt wheel fails here and
    is deleted (the next run fetches it again).
    """
    root = dist.parent
    for stale in root.glob(f".{dist.name}-*"):  # left by an interrupted run
        shutil.rmtree(stale, ignore_errors=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{dist.name}-", dir=root))
    try:
        files = {}
        with zipfile.ZipFile(wheel) as archive:
            members = [(info, place(info.filename)) for info in archive.infolist() if not info.is_dir()]
            members = [(info, target) for info, target in members if target]
            missing = sorted(set(required) - {target for _, target in members})
            if missing:
                raise BackendError(f"the wheel {wheel.name} lacks {', '.join(missing)}",
                                   f"delete {root} and run `{setup_command}` again")
            for info, relative in members:
                target = staging / relative
                target.parent.mkdir(parents=True, exist_ok=True)
                with archive.open(info) as source, open(target, "wb") as sink:
                    shutil.copyfileobj(source, sink, 1 << 20)
                if target.stat().st_size != info.file_size:
                    raise BackendError(f"extracting {info.filename} gave {target.stat().st_size} bytes, "
                                       f"expected {info.file_size}", "check the free disk space, then run setup again")
                files[relative] = info.file_size
        write_json(staging / "MANIFEST.json", {"wheel": wheel.name, "files": files})
        staging.chmod(0o755)  # mkdtemp makes it private
        if dist.exists():
            shutil.rmtree(dist)
        os.replace(staging, dist)
        return files
    except (zipfile.BadZipFile, EOFError, OSError) as exc:
        wheel.unlink(missing_ok=True)
        raise BackendError(f"cannot extract {wheel.name}: {exc}",
                           f"check the free disk space and run `{setup_command}` again") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def is_whole(dist: Path) -> bool:
    """Every file the manifest lists is there with its size."""
    try:
        files = json.loads((dist / "MANIFEST.json").read_text())["files"]
    except (OSError, ValueError, KeyError):
        return False
    return all((dist / name).is_file() and (dist / name).stat().st_size == size for name, size in files.items())


def read_marker(marker: Path) -> dict:
    try:
        return json.loads(marker.read_text())
    except (OSError, ValueError):
        return {}


def directory_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


@contextlib.contextmanager
def locked(root: Path) -> Iterator[None]:
    """One setup at a time per cache directory (two commands may start at once)."""
    root.mkdir(parents=True, exist_ok=True)
    with open(root / ".lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@dataclass
class SetupReport:
    """What a setup did: one entry per step with its duration, and the cache size."""

    root: Path
    backend: str
    steps: list[dict] = field(default_factory=list)
    seconds: float = 0.0
    cache_bytes: int = 0

    def to_dict(self) -> dict:
        return {"root": str(self.root), "backend": self.backend, "steps": self.steps,
                "seconds": round(self.seconds, 2), "cache_mb": round(self.cache_bytes / 2**20, 1)}


class Steps:
    """Runs named steps with a spinner and records how long each took."""

    def __init__(self, report: SetupReport, label: str, quiet: bool):
        from rich.console import Console

        self.report = report
        self.label = label
        self.console = Console(stderr=True, quiet=quiet)

    @contextlib.contextmanager
    def step(self, name: str, detail: str = "") -> Iterator[dict]:
        entry = {"step": name, "detail": detail}
        start = time.perf_counter()
        with self.console.status(f"{self.label}: {name}..."):
            yield entry
        entry["seconds"] = round(time.perf_counter() - start, 2)
        self.report.steps.append(entry)
        detail = f": {entry['detail']}" if entry["detail"] else ""
        self.console.print(f"[green]✓[/] {name} ({entry['seconds']:.1f} s){detail}")

    def already_done(self) -> None:
        self.report.steps.append({"step": "check", "detail": "already set up", "seconds": 0.0})

    def fetch_and_extract(self, wheel: Wheel, layout: "CacheLayout",
                          extract_libraries: Callable[[Path, "CacheLayout"], dict[str, int]]) -> None:
        """The two steps every backend starts with: download its wheel, extract what it needs into `dist/`."""
        with self.step("download wheel") as entry:
            path = fetch_wheel(wheel, layout.download_dir)
            entry["detail"] = f"{path.name}, {path.stat().st_size / 2**20:.0f} MB"
        with self.step("extract libraries") as entry:
            files = extract_libraries(path, layout)
            entry["detail"] = f"{len(files)} files, {sum(files.values()) / 2**20:.0f} MB"


@dataclass(frozen=True)
class CacheLayout:
    """Where one backend's setup lives in the user cache: extracted files, download folder, READY marker."""

    root: Path

    @property
    def dist(self) -> Path:
        return self.root / "dist"

    @property
    def marker(self) -> Path:
        return self.root / "READY.json"

    @property
    def download_dir(self) -> Path:
        return self.root / "download"


def print_report(report: SetupReport, title: str, as_json: bool, cache: str | Path | None = None,
                 default: Path | None = None, env_dir: str = "") -> None:
    """A setup report as a rich table, or as JSON. A `cache` other than the `default` one that the
    commands use gets a note on the variable (`env_dir`) that selects it."""
    from rich.console import Console
    from rich.table import Table

    console = Console()
    if as_json:
        console.print_json(json.dumps(report.to_dict()))
        return
    table = Table(title=title)
    for column in ("step", "seconds", "detail"):
        table.add_column(column)
    for step in report.steps:
        table.add_row(step["step"], f"{step['seconds']:.1f}", step["detail"])
    console.print(table)
    console.print(f"ready in {report.seconds:.1f} s; cache {report.cache_bytes / 2**20:.0f} MB")
    if cache and default and Path(cache).expanduser().resolve() != default.resolve():
        console.print(f"convert and validate use {default}: export {env_dir}={cache} to use this one")
