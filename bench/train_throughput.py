"""Training throughput on this CPU: images/s of one MindSpore train step per width, side by side.

Each width (1001 classes, relu6) is trained with the trainer's own factories (momentum SGD, label-
smoothed CE, graph mode, amp O0) on a fixed synthetic batch, so the figure is the train step alone,
not the data pipeline. After `--warmup` steps (the first one compiles the graph) `--steps` steps are
timed; the table shows images/s, ms/step and the throughput relative to width 0.25.

    .venv/bin/python bench/train_throughput.py [--image-size 224] [--batch-size 32] [--steps 3] [--json]
"""

from __future__ import annotations

import argparse
import json
import time


def bench_width(width: float, image_size: int, batch_size: int, warmup: int, steps: int) -> dict:
    import mindspore as ms
    import numpy as np

    from toolkit.models import create_model, model_name
    from toolkit.train.config import build_config
    from toolkit.train.optim import create_loss, create_optimizer
    from toolkit.train.trainer import create_train_step

    config = build_config({"opt": "momentum", "lr": 0.01, "label_smoothing": 0.1})
    network = create_model(model_name(width), num_classes=1001)
    optimizer = create_optimizer(network, config.optimizer, [config.scheduler.lr] * (warmup + steps))
    step = create_train_step(network, create_loss(config.loss, 1001), optimizer, config.precision)
    rng = np.random.RandomState(0)
    images = ms.Tensor(rng.randn(batch_size, 3, image_size, image_size).astype(np.float32))
    labels = ms.Tensor(rng.randint(0, 1001, batch_size).astype(np.int32))
    for _ in range(warmup):
        step(images, labels).asnumpy()
    start = time.perf_counter()
    for _ in range(steps):
        loss = float(step(images, labels).asnumpy())
    seconds = (time.perf_counter() - start) / steps
    return {"width": width, "model": model_name(width), "image_size": image_size, "batch_size": batch_size,
            "parameters": sum(int(np.prod(p.shape)) for p in network.get_parameters()),
            "ms_per_step": 1000 * seconds, "images_per_s": batch_size / seconds, "loss": loss}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps (the first compiles)")
    parser.add_argument("--steps", type=int, default=3, help="timed steps per width")
    parser.add_argument("--widths", default="0.25,0.5,0.75,1.0")
    parser.add_argument("--json", action="store_true", help="print the results as JSON instead of a table")
    parser.add_argument("--out", help="also write the JSON results to this file")
    args = parser.parse_args()

    import os

    os.environ.setdefault("GLOG_v", "4")
    import mindspore as ms
    from rich.console import Console
    from rich.table import Table

    ms.set_context(mode=ms.GRAPH_MODE, device_target="CPU")
    console = Console(stderr=True)
    rows = []
    for width in (float(w) for w in args.widths.split(",")):
        with console.status(f"width {width}: {args.warmup} warm-up + {args.steps} timed steps"):
            rows.append(bench_width(width, args.image_size, args.batch_size, args.warmup, args.steps))
    base = rows[0]["images_per_s"]
    load = round(os.getloadavg()[0], 2)  # other work on the machine slows every width alike
    for row in rows:
        row.update(relative=row["images_per_s"] / base, load_average=load)
    if args.out:
        from toolkit.fsutil import write_json

        write_json(args.out, rows)
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    table = Table(title=f"MindSpore CPU train step, {args.image_size}x{args.image_size}, batch {args.batch_size} "
                        f"({os.cpu_count()} cores, load average {load})")
    for column in ("model", "parameters", "ms/step", "images/s", f"vs {rows[0]['model']}"):
        table.add_column(column, justify="left" if column == "model" else "right")
    for row in rows:
        table.add_row(row["model"], f"{row['parameters']:,}", f"{row['ms_per_step']:.0f}",
                      f"{row['images_per_s']:.2f}", f"{row['relative']:.2f}x")
    Console().print(table)


if __name__ == "__main__":
    main()
