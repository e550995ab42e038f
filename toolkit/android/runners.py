"""The official benchmark runners for android_aarch64, kept in the user cache.

    mnv1-tk setup android-runners --from android_aarch64_benchmark_model
    mnv1-tk setup android-runners --from mindspore-lite-2.0.0-android-aarch64.tar.gz --sha256 HEX
    mnv1-tk setup android-runners            # downloads both from the official URLs (needs internet)

The cache (`$MNV1TK_ANDROID_RUNNERS`, default ~/.cache/mnv1-tk/android-runners) holds
`litert/benchmark_model`, `mslite/benchmark` with `mslite/lib/` (libmindspore-lite.so,
libc++_shared.so, and the HiAI libraries when the package has them), and `runners.json` recording each
file's SHA-256 (computed here, never looked up) and the version.
"""

from __future__ import annotations

import os
import re
import shutil
import tarfile
import tempfile
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path

from toolkit.errors import BackendError, ConfigError
from toolkit.fsutil import ensure_writable_dir, sha256_of, write_json

LITERT_URL = ("https://storage.googleapis.com/tensorflow-nightly-public/prod/tensorflow/release/lite/tools/"
              "nightly/latest/android_aarch64_benchmark_model")
MSLITE_VERSION = "2.0.0"
MSLITE_URL = (f"https://ms-release.obs.cn-north-4.myhuaweicloud.com/{MSLITE_VERSION}/MindSpore/lite/release/"
              f"android/gpu/mindspore-lite-{MSLITE_VERSION}-android-aarch64.tar.gz")
MSLITE_LIBS = ("libmindspore-lite.so", "libc++_shared.so")
HIAI_LIBS = ("libhiai.so", "libhiai_ir.so", "libhiai_ir_build.so")
HOW_TO_GET = {
    "litert": f"download {LITERT_URL} and run `mnv1-tk setup android-runners --from FILE`",
    "mslite": f"download {MSLITE_URL} and run `mnv1-tk setup android-runners --from FILE`",
}


def cache_dir() -> Path:
    return Path(os.environ.get("MNV1TK_ANDROID_RUNNERS") or Path.home() / ".cache" / "mnv1-tk" / "android-runners")


@dataclass(frozen=True)
class Runner:
    """An installed runner: the binary, the libraries pushed with it, and where it came from."""

    kind: str  # "litert" | "mslite"
    binary: Path
    libraries: tuple[Path, ...]
    version: str
    sha256: str

    @property
    def hiai(self) -> tuple[Path, ...]:
        return tuple(p for p in self.libraries if p.name in HIAI_LIBS)


def _manifest() -> dict:
    import json

    path = cache_dir() / "runners.json"
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def find_runner(kind: str) -> Runner:
    """The installed runner of `kind`, or one line saying how to get it."""
    entry = _manifest().get(kind)
    name = "LiteRT benchmark_model" if kind == "litert" else "MindSpore Lite benchmark"
    if entry:
        root = cache_dir() / kind
        binary = root / entry["binary"]
        libraries = tuple(root / "lib" / lib for lib in entry.get("libraries", {}))
        if binary.is_file() and all(p.is_file() for p in libraries):
            return Runner(kind, binary, libraries, entry.get("version", "unknown"), entry["files"][entry["binary"]])
    raise BackendError(f"the {name} runner for android_aarch64 is not installed in {cache_dir()}", HOW_TO_GET[kind])


def _find(root: Path, predicate) -> Path | None:
    matches = sorted((p for p in root.rglob("*") if p.is_file() and predicate(p)), key=lambda p: len(p.parts))
    return matches[0] if matches else None


def _unpack(archive: Path, into: Path) -> Path:
    try:
        if archive.name.endswith(".zip"):
            with zipfile.ZipFile(archive) as z:
                z.extractall(into)
        else:
            with tarfile.open(archive) as t:
                t.extractall(into, filter="data")
    except (OSError, tarfile.TarError, zipfile.BadZipFile) as exc:
        raise ConfigError(f"cannot unpack {archive} ({exc})", "pass the official .tar.gz/.zip or its folder") from None
    return into


def _install(kind: str, binary: Path, libraries: list[Path], version: str, source: str) -> dict:
    """Copy into the cache (a fresh folder renamed over the old one) and record the hashes."""
    root = ensure_writable_dir(cache_dir())
    staging = Path(tempfile.mkdtemp(prefix=f".{kind}-", dir=root))
    try:
        target_binary = staging / ("benchmark_model" if kind == "litert" else "benchmark")
        shutil.copyfile(binary, target_binary)
        os.chmod(target_binary, 0o755)
        for lib in libraries:
            (staging / "lib").mkdir(exist_ok=True)
            shutil.copyfile(lib, staging / "lib" / lib.name)
        files = {target_binary.name: sha256_of(target_binary)}
        files.update({lib.name: sha256_of(staging / "lib" / lib.name) for lib in libraries})
        final = root / kind
        if final.exists():
            shutil.rmtree(final)
        os.replace(staging, final)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    entry = {"binary": target_binary.name, "version": version, "source": source, "files": files,
             "libraries": {lib.name: files[lib.name] for lib in libraries}}
    manifest = _manifest()
    manifest[kind] = entry
    write_json(root / "runners.json", manifest)
    return entry


def _version_from_name(path: Path) -> str | None:
    match = re.search(r"mindspore-lite-(\d+\.\d+\.\d+(?:rc\d+)?)", str(path))
    return match[1] if match else None


def _download(url: str, into: Path) -> Path:
    target = into / url.rsplit("/", 1)[1]
    try:
        with urllib.request.urlopen(url, timeout=30) as response, open(target, "wb") as out:
            shutil.copyfileobj(response, out)
    except OSError as exc:
        raise BackendError(f"cannot download {url} ({getattr(exc, 'reason', exc)})",
                           "download it on a machine with internet and run "
                           "`mnv1-tk setup android-runners --from FILE`") from None
    return target


def setup_runners(source: str | Path | None = None, *, sha256: str | None = None,
                  version: str | None = None) -> dict:
    """Install the runners found in `source` (a benchmark_model binary, a MindSpore Lite android-aarch64
    package folder or archive, or a folder holding them); without `source`, download both.

    `sha256` is checked against the single file given (binary or archive) before anything is installed.
    Returns {kind: manifest entry} for what was installed.
    """
    with tempfile.TemporaryDirectory(prefix="mnv1tk-runners-") as scratch:
        scratch = Path(scratch)
        if source is None:
            sources = [_download(LITERT_URL, scratch), _download(MSLITE_URL, scratch)]
        else:
            sources = [Path(source)]
            if not sources[0].exists():
                raise ConfigError(f"{source} does not exist", "pass a benchmark_model binary or a MindSpore Lite "
                                                              "android-aarch64 package (folder or archive)")
        if sha256:
            if len(sources) != 1 or not sources[0].is_file():
                raise ConfigError("--sha256 checks one file", "pass --from with the binary or archive it belongs to")
            actual = sha256_of(sources[0])
            if actual != sha256.lower():
                raise ConfigError(f"{sources[0].name} has SHA-256 {actual}, not {sha256.lower()}",
                                  "download the file again from the official release")
        installed = {}
        for path in sources:
            installed.update(_install_from(path, scratch, version))
    if not installed:
        raise ConfigError(f"no benchmark_model or MindSpore Lite benchmark found in {source}",
                          "pass the LiteRT android_aarch64_benchmark_model binary or the "
                          "mindspore-lite-*-android-aarch64 package")
    return installed


def _install_from(path: Path, scratch: Path, version: str | None) -> dict:
    label = str(path)
    if path.is_file() and path.name.endswith((".tar.gz", ".tgz", ".zip")):
        path = _unpack(path, Path(tempfile.mkdtemp(dir=scratch)))
    installed = {}
    if path.is_file():
        if "benchmark_model" in path.name:
            installed["litert"] = _install("litert", path, [], version or "unknown (pass --version)", label)
        return installed
    litert = _find(path, lambda p: p.name.endswith("benchmark_model"))
    if litert:
        installed["litert"] = _install("litert", litert, [], version or "unknown (pass --version)", label)
    mslite = _find(path, lambda p: p.name == "benchmark" and p.parent.name == "benchmark") or \
        _find(path, lambda p: p.name == "benchmark")
    if mslite:
        libraries = []
        for name in MSLITE_LIBS:
            lib = _find(path, lambda p, n=name: p.name == n)
            if lib is None:
                raise ConfigError(f"{label} has MindSpore Lite's benchmark but no {name}",
                                  "pass the whole mindspore-lite-*-android-aarch64 package")
            libraries.append(lib)
        libraries += [lib for name in HIAI_LIBS if (lib := _find(path, lambda p, n=name: p.name == n))]
        installed["mslite"] = _install("mslite", mslite, libraries,
                                       version or _version_from_name(Path(label)) or "unknown (pass --version)",
                                       label)
    return installed


def setup_command(source, *, sha256: str | None = None, version: str | None = None) -> dict:
    """`mnv1-tk setup android-runners`: install, then one line per runner."""
    import click

    installed = setup_runners(source, sha256=sha256, version=version)
    for kind, entry in installed.items():
        click.echo(f"{kind}: {cache_dir() / kind / entry['binary']} (version {entry['version']}, "
                   f"sha256 {entry['files'][entry['binary']]}, {len(entry['libraries'])} libraries)")
    return installed
