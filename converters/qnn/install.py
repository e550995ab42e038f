"""The QNN execution provider and QAIRT's x86_64 HTP libraries from the `onnxruntime-qnn` wheel, in the user cache.

The wheel (2.7.0, QAIRT 2.51) is a plugin execution provider for onnxruntime >= 1.32: we register
its library with the onnxruntime already installed and never import its Python package. The steps
(download, extract, smoke test, READY.json last) are `converters.native`'s.

Cache layout (`~/.cache/mnv1-tk/qnn-2.7.0`, or `--cache DIR`, or `$MNV1TK_QNN_DIR`):
    download/   the wheel, deleted once setup has passed
    dist/       onnxruntime_qnn/ (the EP, the HTP backend and its offline compiler, QnnSystem) and
                onnxruntime_qnn.libs/ (the libc++ they link through RPATH $ORIGIN/../onnxruntime_qnn.libs)
    READY.json  written after the smoke test
"""

from __future__ import annotations

from pathlib import Path

from converters import native
from toolkit.errors import BackendError

VERSION = "2.7.0"
QAIRT_VERSION = "2.51"
ONNXRUNTIME_MIN = (1, 32)  # register_execution_provider_library + add_provider_for_devices for this EP build
WHEEL = native.Wheel("onnxruntime-qnn", VERSION, f"onnxruntime_qnn-{VERSION}-cp311-cp311-manylinux_2_35_x86_64.whl",
                     ("--python-version", "3.11", "--platform", "manylinux_2_35_x86_64"), "mnv1-tk setup qnn")
PACKAGE, VENDORED = "onnxruntime_qnn/", "onnxruntime_qnn.libs/"
PROVIDER = "libonnxruntime_providers_qnn.so"
HTP_BACKEND = "libQnnHtp.so"
LIBRARIES = (PROVIDER, HTP_BACKEND, "libHtpPrepare.so", "libQnnSystem.so")
ENV_DIR = "MNV1TK_QNN_DIR"


def default_cache() -> Path:
    return native.user_cache(ENV_DIR, f"qnn-{VERSION}")


class Installation(native.CacheLayout):
    """Where the QNN setup lives."""

    @property
    def provider_library(self) -> Path:
        return self.dist / PACKAGE / PROVIDER

    @property
    def htp_backend(self) -> Path:
        return self.dist / PACKAGE / HTP_BACKEND


def is_ready(install: Installation) -> bool:
    return native.read_marker(install.marker).get("onnxruntime_qnn") == VERSION and native.is_whole(install.dist)


def check_onnxruntime() -> str:
    """The installed onnxruntime must load plugin execution providers; returns its version."""
    import onnxruntime as ort

    version = tuple(int(p) for p in ort.__version__.split(".")[:2])
    if version < ONNXRUNTIME_MIN or not hasattr(ort, "register_execution_provider_library"):
        wanted = ".".join(map(str, ONNXRUNTIME_MIN))
        raise BackendError(f"onnxruntime {ort.__version__} cannot load the QNN plugin execution provider",
                           f"pip install 'onnxruntime>={wanted}'")
    return ort.__version__


def _place(member: str) -> str | None:
    if member.startswith(VENDORED) or member in {PACKAGE + name for name in LIBRARIES}:
        return member
    return None


def extract_libraries(wheel: Path, install: Installation) -> dict[str, int]:
    return native.extract(wheel, install.dist, _place, tuple(PACKAGE + name for name in LIBRARIES),
                          WHEEL.setup_command)
