"""The session's digits run (shipped config, fixed seed): accuracy, what the run leaves on disk, and
validate on every format it was exported to."""

from __future__ import annotations

import json

import onnx
import pytest
from click.testing import CliRunner

from toolkit.card import load_card
from toolkit.cli import main
from toolkit.data import DatasetSpec
from toolkit.train import load_config
from toolkit.validate import validate


def test_digits_reaches_90_percent_validation_top1(trained_digits):
    result = validate(trained_digits.checkpoint, DatasetSpec("digits"))
    assert result.count == 359
    assert result.top1 >= 0.90
    assert result.top1 == pytest.approx(trained_digits.best_top1)  # the trainer's validation agrees


def test_run_directory(trained_digits):
    run = trained_digits.run_dir
    names = sorted(p.name for p in run.iterdir())
    # keep_checkpoint_max: 2 -> the last two epoch checkpoints, each with its card
    assert names == ["config.yaml", "metrics.jsonl", "mobilenet_v1_025-4_176.ckpt", "mobilenet_v1_025-4_176.ckpt.json",
                     "mobilenet_v1_025-5_220.ckpt", "mobilenet_v1_025-5_220.ckpt.json", "mobilenet_v1_025_best.ckpt",
                     "mobilenet_v1_025_best.ckpt.json", "optim_mobilenet_v1_025.ckpt"]
    assert load_config(run / "config.yaml") == load_config("mobilenet_v1_025_digits", {"ckpt_save_dir": str(run)})
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    epochs = [r for r in records if r["event"] == "epoch"]
    assert [r["epoch"] for r in epochs] == [1, 2, 3, 4, 5] and list(trained_digits.history) == epochs
    assert [r["global_step"] for r in records if r["event"] == "step"] == list(range(10, 221, 10))
    assert epochs[-1]["loss"] < epochs[0]["loss"] / 2
    assert all(r["images_per_s"] > 0 and 0 <= r["lr"] <= 0.05 for r in records if r["event"] == "step")


def test_checkpoint_cards(trained_digits):
    card = load_card(trained_digits.checkpoint)
    assert card.format == "ckpt" and card.model == "mobilenet_v1_025" and card.width == 0.25
    assert card.image_size == 32 and card.num_classes == 10 and card.labels == tuple("0123456789")
    assert card.activation == "relu6" and card.crop_pct == 0.875
    assert card.extra["val_top1"] == trained_digits.best_top1
    assert load_card(trained_digits.run_dir / "mobilenet_v1_025-5_220.ckpt").extra["epoch"] == 5


def test_exported_onnx_interface(trained_digits):
    model = onnx.load(str(trained_digits.onnx))
    assert [i.name for i in model.graph.input] == ["x"] and [o.name for o in model.graph.output] == ["logits"]
    dims = [d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim]
    assert dims == [1, 3, 32, 32]
    card = load_card(trained_digits.onnx)
    assert trained_digits.onnx.name == "mobilenet_v1_025_32.onnx" and card.format == "onnx"
    assert load_card(trained_digits.mindir).format == "mindir"
    assert card.replace(format="ckpt", source="", extra={}) == load_card(trained_digits.checkpoint).replace(
        source="", extra={})


def test_validate_cli_gives_the_same_accuracy_for_every_format(trained_digits):
    results = {}
    for path in (trained_digits.checkpoint, trained_digits.onnx, trained_digits.mindir):
        run = CliRunner().invoke(main, ["validate", "--model", str(path), "--json"])
        assert run.exit_code == 0, run.output
        results[path.suffix] = json.loads(run.stdout)
    assert {r["runtime"] for r in results.values()} == {"mindspore", "onnxruntime", "mindspore-mindir"}
    assert {r["count"] for r in results.values()} == {359}
    top1 = [round(r["top1"] * 359) for r in results.values()]
    assert max(top1) - min(top1) <= 1  # logits agree to 1e-4; only a near-tie could flip one image
    table = CliRunner().invoke(main, ["validate", "--model", str(trained_digits.onnx), "--limit", "100"])
    assert table.exit_code == 0 and "top-1" in table.stdout and "onnxruntime" in table.stdout
    assert "100" in table.stdout


def test_fine_tuning_reinitialises_the_head(trained_digits, tmp_path):
    out = tmp_path / "finetune"
    run = CliRunner().invoke(main, ["train", "-c", "mobilenet_v1_025_digits", "--pretrained",
                                    str(trained_digits.checkpoint), "--num-classes", "12", "--epochs", "1",
                                    "--lr", "0.01", "--out", str(out), "--set", "num_samples=320"])
    assert run.exit_code == 0, run.output
    assert "head: re-initialised for 12 classes (the checkpoint has 10)" in run.stderr
    card = load_card(out / "mobilenet_v1_025_best.ckpt")
    assert card.num_classes == 12 and card.labels[-2:] == ("class_10", "class_11")
    # The backbone came from the trained model: 10 steps suffice for a new head (from scratch, a whole
    # epoch of 1,437 images reaches about 20%).
    assert validate(out / "mobilenet_v1_025_best.ckpt", DatasetSpec("digits")).top1 > 0.8


def test_train_and_validate_give_the_callers_execution_mode_back(trained_digits, tmp_path):
    """Both compile in graph mode; a caller running PyNative (bench/qat_ceiling.py patches functions the
    graph compiler cannot parse) must get PyNative back."""
    import mindspore as ms
    from rich.console import Console

    from toolkit.train import train

    ms.set_context(mode=ms.PYNATIVE_MODE)
    config = load_config("mobilenet_v1_025_digits", {"ckpt_save_dir": str(tmp_path), "epoch_size": 1,
                                                     "val_while_train": False}, ["num_samples=64"])
    train(config, console=Console(stderr=True, quiet=True))
    assert ms.get_context("mode") == ms.PYNATIVE_MODE
    assert validate(trained_digits.checkpoint, DatasetSpec("digits"), limit=64).count == 64
    assert ms.get_context("mode") == ms.PYNATIVE_MODE
