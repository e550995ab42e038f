"""A small model in every format the toolkit reads, for the reliability sweep.

MobileNetV1 0.25 at 32x32 with a trained network's weight statistics (tests/models.py), saved as a
checkpoint with its card, exported to ONNX and MINDIR, and converted to fp32 `.tflite` and `.ms`:
about 15 s, once per session. Tests copy these files before damaging them.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

MNV1_TK = str(Path(sys.executable).parent / "mnv1-tk")


@dataclass(frozen=True)
class ModelSet:
    directory: Path
    files: dict[str, Path]  # ".ckpt" / ".onnx" / ".mindir" / ".tflite" / ".ms" -> the file (its card beside it)

    def copy(self, suffix: str, to: Path) -> Path:
        """A copy of the model of `suffix` and its card in `to`."""
        to.mkdir(parents=True, exist_ok=True)
        source = self.files[suffix]
        shutil.copy(source, to / source.name)
        shutil.copy(f"{source}.json", to / f"{source.name}.json")
        return to / source.name


@pytest.fixture(scope="session")
def model_set(tmp_path_factory) -> ModelSet:
    import mindspore as ms

    from tests.models import digits_images, randomise_like_trained
    from toolkit.card import save_card
    from toolkit.convert import ConvertOptions, convert
    from toolkit.export import export_model
    from toolkit.models import create_model
    from toolkit.models.checkpoint import checkpoint_card

    directory = tmp_path_factory.mktemp("reliability_models")
    ckpt = directory / "mobilenet_v1_025.ckpt"
    ms.set_seed(25)
    network = create_model("mobilenet_v1_025", num_classes=10)
    randomise_like_trained(network, digits_images(), seed=25)
    ms.save_checkpoint(network, str(ckpt))
    save_card(checkpoint_card(ckpt, width=0.25, image_size=32, num_classes=10).replace(format="ckpt"), ckpt)
    exported = export_model(ckpt, directory)
    converted = convert(exported["onnx"], ConvertOptions(to="tflite,mslite", quant="none", num_eval=4))
    files = {".ckpt": ckpt, ".onnx": exported["onnx"], ".mindir": exported["mindir"]}
    files.update({r.path.suffix: r.path for r in converted})
    return ModelSet(directory, files)


def run_cli(args, *, timeout: float = 300, preexec_fn=None, cwd=None) -> subprocess.CompletedProcess:
    """`mnv1-tk ARGS` in a child process (for native crashes, resource limits and signals)."""
    env = dict(os.environ, GLOG_v="4")
    return subprocess.run([MNV1_TK, *map(str, args)], capture_output=True, text=True, timeout=timeout,
                          preexec_fn=preexec_fn, cwd=cwd, env=env)


def leftovers(directory: Path) -> list[str]:
    """Scratch files or folders a writer leaves when it dies half-way (they are hidden and named .part / .tmp)."""
    return sorted(str(p.relative_to(directory)) for p in directory.rglob("*")
                  if ".part" in p.name or p.name.endswith(".tmp") or p.name.startswith(".mnv1-tk-"))
