"""`mnv1-tk train`."""

from __future__ import annotations

import click

from toolkit.cli import main


@main.command(context_settings={"max_content_width": 100})
@click.option("--config", "-c", "config_file", metavar="YAML",
              help="Config file (mindcv keys), or a shipped config's name, e.g. mobilenet_v1_025_digits.")
@click.option("--data-dir", help="Dataset root: root/{train,val}/<class>/*.jpg or cifar-10-batches-bin.")
@click.option("--dataset", help="digits | imagefolder (alias imagenet) | cifar10.")
@click.option("--model", help="mobilenet_v1_025 | mobilenet_v1_050 | mobilenet_v1_075 | mobilenet_v1_100.")
@click.option("--image-size", type=int, help="Input size, 32..224.")
@click.option("--num-classes", type=int, help="Classes (default: the dataset's); with --pretrained: fine-tune.")
@click.option("--activation", type=click.Choice(["relu6", "relu"]), help="relu6 (default) or relu (mindcv).")
@click.option("--pretrained", metavar="CKPT", help="Start from this checkpoint; a different head is re-initialised.")
@click.option("--epochs", type=int, help="Training epochs (epoch_size).")
@click.option("--batch-size", type=int, help="Images per step and worker.")
@click.option("--lr", type=float, help="Peak learning rate (with --qat: qat_lr, default 0.001).")
@click.option("--out", "ckpt_save_dir", metavar="DIR", help="Checkpoints, cards, metrics.jsonl, config.yaml.")
@click.option("--resume", is_flag=True, default=None, help="Continue from the newest checkpoint in --out.")
@click.option("--device-target", type=click.Choice(["CPU", "GPU", "Ascend"]), help="Where to train.")
@click.option("--distributed", is_flag=True, default=None, help="Data-parallel over msrun's workers.")
@click.option("--amp-level", type=click.Choice(["O0", "O1", "O2", "O3"]), help="Mixed precision.")
@click.option("--ema", is_flag=True, default=None, help="Keep and save an EMA of the weights.")
@click.option("--seed", type=int, help="Random seed.")
@click.option("--qat", is_flag=True, default=None,
              help="Quantization-aware fine-tuning of --from CKPT, distilled from its float logits.")
@click.option("--from", "qat_from", metavar="CKPT", help="The trained checkpoint --qat fine-tunes.")
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE",
              help="Any config key, e.g. --set label_smoothing=0.1.")
def train(config_file, data_dir, dataset, model, image_size, num_classes, activation, pretrained, epochs, batch_size,
          lr, ckpt_save_dir, resume, device_target, distributed, amp_level, ema, seed, qat, qat_from, sets):
    """Train MobileNetV1 on MindSpore. YAML sets the defaults, flags override them.

    \b
    Examples:
      mnv1-tk train -c mobilenet_v1_025_digits --out runs/digits
      mnv1-tk train -c mobilenet_v1_025_digits --out runs/digits --resume
      mnv1-tk train -c mobilenet_v1_025_digits --qat --from runs/digits/mobilenet_v1_025_best.ckpt \\
          --epochs 3 --out runs/digits_qat
      msrun --worker_num=8 --local_worker_num=8 mnv1-tk train -c mobilenet_v1_100_ascend \\
          --data-dir /data/imagenet --distributed
    """
    from toolkit.train import train_from_config

    train_from_config(config_file, {
        "data_dir": data_dir, "dataset": dataset, "model": model, "image_resize": image_size,
        "num_classes": num_classes, "activation": activation, "ckpt_path": qat_from or pretrained, "qat": qat,
        "epoch_size": epochs,
        "batch_size": batch_size, "qat_lr" if qat else "lr": lr, "ckpt_save_dir": ckpt_save_dir, "resume_opt": resume,
        "device_target": device_target, "distribute": distributed, "amp_level": amp_level, "ema": ema, "seed": seed,
    }, sets)
