"""Bad input through the real CLI: exit code 2, one line on stderr naming problem and fix, no traceback,
no partial output. Cases whose error comes out of MindSpore's C++ side run in a subprocess so that
its own stderr is checked too."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import cv2
import mindspore as ms
import numpy as np
import pytest
from click.testing import CliRunner

from toolkit.card import save_card
from toolkit.cli import main
from toolkit.models import create_model
from toolkit.models.checkpoint import checkpoint_card

MNV1_TK = [str(Path(sys.executable).parent / "mnv1-tk")]


def _image_folder(root: Path, classes=("a", "b"), per_class=2, size=16) -> Path:
    rng = np.random.RandomState(0)
    for split in ("train", "val"):
        for name in classes:
            folder = root / split / name
            folder.mkdir(parents=True)
            for i in range(per_class):
                cv2.imwrite(str(folder / f"{i}.png"), rng.randint(0, 255, (size, size, 3), np.uint8))
    return root


def _cli(args) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, args)
    return result.exit_code, result.stdout, result.stderr


def _subprocess_cli(args, cwd) -> tuple[int, str, str]:
    env = dict(os.environ, GLOG_v="4")
    proc = subprocess.run(MNV1_TK + args, capture_output=True, text=True, cwd=cwd, env=env, timeout=300)
    return proc.returncode, proc.stdout, proc.stderr


def _assert_one_line_error(code, stdout, stderr, *needles):
    assert code == 2, (code, stdout, stderr)
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), stderr
    assert "Traceback" not in stderr and stdout == ""
    for needle in needles:
        assert needle in lines[0], lines[0]


@pytest.fixture(scope="module")
def width_025_checkpoint(tmp_path_factory) -> Path:
    """A mnv1-tk checkpoint of width 0.25 (10 classes, 32 px) with its card."""
    path = tmp_path_factory.mktemp("ckpt") / "mobilenet_v1_025.ckpt"
    ms.save_checkpoint(create_model("mobilenet_v1_025", num_classes=10), str(path))
    save_card(checkpoint_card(path, width=0.25, image_size=32, num_classes=10).replace(format="ckpt"), path)
    return path


def test_missing_data_directory(tmp_path):
    out = tmp_path / "run"
    code, stdout, stderr = _cli(["train", "--dataset", "imagefolder", "--data-dir", str(tmp_path / "nope"),
                                 "--out", str(out), "--image-size", "32"])
    _assert_one_line_error(code, stdout, stderr, "data directory", "does not exist", "--data-dir")
    assert not out.exists()


def test_empty_class_folder(tmp_path):
    data = _image_folder(tmp_path / "data")
    (data / "train" / "c").mkdir()
    out = tmp_path / "run"
    code, stdout, stderr = _cli(["train", "--dataset", "imagefolder", "--data-dir", str(data), "--out", str(out),
                                 "--image-size", "32"])
    _assert_one_line_error(code, stdout, stderr, "class folder", "train/c", "holds no images")
    assert not out.exists()


def test_unreadable_image(tmp_path):
    data = _image_folder(tmp_path / "data")
    (data / "train" / "a" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n this is not an image")
    out = tmp_path / "run"
    code, stdout, stderr = _subprocess_cli(["train", "--dataset", "imagefolder", "--data-dir", str(data), "--out",
                                            str(out), "--image-size", "32", "--batch-size", "2", "--epochs", "1",
                                            "--set", "num_parallel_workers=1"], cwd=tmp_path)
    _assert_one_line_error(code, stdout, stderr, "broken.png")
    assert not out.exists()


def test_unknown_config_key(tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text("dataset: digits\nlearning_rate: 0.1\n")
    out = tmp_path / "run"
    code, stdout, stderr = _cli(["train", "-c", str(config), "--out", str(out)])
    _assert_one_line_error(code, stdout, stderr, "unknown config key 'learning_rate'", "valid keys:", "lr")
    assert not out.exists()


@pytest.mark.parametrize("text, needle", [("lr: -1\n", "'lr' is -1.0 but must be > 0"),
                                          ("amp_level: O4\n", "'amp_level' is 'O4'"),
                                          ("mixup: 0.2\n", "does not implement")])
def test_bad_config_value(tmp_path, text, needle):
    config = tmp_path / "c.yaml"
    config.write_text(text)
    out = tmp_path / "run"
    code, stdout, stderr = _cli(["train", "-c", str(config), "--out", str(out)])
    _assert_one_line_error(code, stdout, stderr, needle)
    assert not out.exists()


def test_wrong_width_checkpoint(tmp_path, width_025_checkpoint):
    out = tmp_path / "out"
    code, stdout, stderr = _cli(["export", "--ckpt", str(width_025_checkpoint), "--width", "0.5", "--out", str(out)])
    _assert_one_line_error(code, stdout, stderr, "'features.0.weight'", "[8, 3, 3, 3] in the checkpoint",
                           "[16, 3, 3, 3] in the model", "--width 0.25")
    assert not out.exists()
    run = tmp_path / "run"
    code, stdout, stderr = _cli(["train", "--model", "mobilenet_v1_050", "--image-size", "32", "--pretrained",
                                 str(width_025_checkpoint), "--out", str(run)])
    _assert_one_line_error(code, stdout, stderr, "'features.0.weight'", "[8, 3, 3, 3]", "[16, 3, 3, 3]")
    assert not run.exists()


@pytest.mark.parametrize("damage", ["truncated", "corrupt"])
def test_corrupt_or_truncated_checkpoint(tmp_path, width_025_checkpoint, damage):
    raw = width_025_checkpoint.read_bytes()
    bad = tmp_path / "mobilenet_v1_025.ckpt"
    bad.write_bytes(raw[: len(raw) // 2] if damage == "truncated" else b"\xff\xfe" + raw[100:])
    (tmp_path / "mobilenet_v1_025.ckpt.json").write_bytes(Path(f"{width_025_checkpoint}.json").read_bytes())
    code, stdout, stderr = _cli(["validate", "--model", str(bad)])
    _assert_one_line_error(code, stdout, stderr, "corrupt or truncated", str(bad))
    out = tmp_path / "out"
    code, stdout, stderr = _cli(["export", "--ckpt", str(bad), "--out", str(out)])
    _assert_one_line_error(code, stdout, stderr, "corrupt or truncated")
    assert not out.exists()


def test_foreign_checkpoint_without_card_or_flags(tmp_path, width_025_checkpoint):
    bare = tmp_path / "bare.ckpt"
    bare.write_bytes(width_025_checkpoint.read_bytes())
    code, stdout, stderr = _cli(["export", "--ckpt", str(bare), "--out", str(tmp_path / "out")])
    _assert_one_line_error(code, stdout, stderr, "has no model card", "--width and --image-size")
    assert not (tmp_path / "out").exists()


def test_an_existing_run_is_not_overwritten_without_resume(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / "optim_mobilenet_v1_025.ckpt").write_bytes(b"committed state of an earlier run")
    (out / "config.yaml").write_text("lr: 0.1\n")
    code, stdout, stderr = _cli(["train", "-c", "mobilenet_v1_025_digits", "--out", str(out)])
    _assert_one_line_error(code, stdout, stderr, "already holds a training run", "--resume")
    assert sorted(p.name for p in out.iterdir()) == ["config.yaml", "optim_mobilenet_v1_025.ckpt"]
    assert (out / "config.yaml").read_text() == "lr: 0.1\n"
