"""Does MindSpore Golden Stick's QAT fit our scheme? Its SimQAT applied to our MobileNetV1 and to a hand-written
Conv-BN-ReLU6 cell, on this machine's MindSpore and CPU: how many fake quantizers it inserts, and whether BN folds.

mindspore-gs 1.4.1 (the newest on PyPI) pins mindspore==2.7.1.post1 and imports Hugging Face `datasets`, so it
is not in the toolkit's dependencies; install it beside them, with the NumPy-1.x pins, into a scratch folder:

    pip install --no-deps --target /tmp/gs_site mindspore-gs==1.4.1 prettytable wcwidth
    pip install --target /tmp/gs_site "datasets==2.21.0" -c <(printf 'numpy<2\\npyarrow<17\\n') && rm -rf /tmp/gs_site/numpy*
    PYTHONPATH=/tmp/gs_site:. python -m bench.golden_stick
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from collections import Counter
from pathlib import Path

from mindspore import nn

# SimQAT's settings closest to our scheme: per-tensor asymmetric activations, per-channel symmetric weights, BN folded.
SCHEME = {"per_channel": [False, True], "symmetric": [False, True], "narrow_range": [False, True],
          "bn_fold": True, "one_conv_fold": True, "enable_fusion": True}


class ConvBnRelu6(nn.Cell):
    def __init__(self):
        super().__init__()
        self.conv, self.bn, self.act = nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.ReLU6()
        self.pool, self.flatten, self.fc = nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dense(8, 10)

    def construct(self, x):
        return self.fc(self.flatten(self.pool(self.act(self.bn(self.conv(x))))))


def probe(name: str, network) -> dict:
    from mindspore_gs.quantization import SimulatedQuantizationAwareTraining

    convs = sum(1 for _, c in network.cells_and_names() if type(c).__name__ == "Conv2d")
    cells = Counter(type(c).__name__ for _, c in SimulatedQuantizationAwareTraining(SCHEME).apply(network)
                    .cells_and_names())
    quantizers = sum(n for kind, n in cells.items() if kind.startswith("SimulatedFakeQuantizer"))
    folded = sum(n for kind, n in cells.items() if "BnFold" in kind)
    return {"network": name, "conv layers": convs, "fake quantizers": quantizers, "BN-folded convs": folded}


def main(argv=None) -> int:
    argparse.ArgumentParser(description=__doc__.splitlines()[0]).parse_args(argv)
    import mindspore as ms
    from rich.console import Console
    from rich.table import Table

    from toolkit.models import create_model

    ms.set_context(mode=ms.GRAPH_MODE, device_target="CPU")
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    home = os.getcwd()
    with tempfile.TemporaryDirectory() as scratch:  # Golden Stick writes its rewritten networks to the cwd
        os.chdir(scratch)
        try:
            rows = [probe("mobilenet_v1_025 (toolkit / mindcv layout)",
                          create_model("mobilenet_v1_025", num_classes=10, activation="relu6")),
                    probe("Conv-BN-ReLU6 written as plain attributes", ConvBnRelu6())]
        finally:
            os.chdir(home)
    table = Table(title=f"Golden Stick SimQAT on MindSpore {ms.__version__}, CPU")
    for column in rows[0]:
        table.add_column(column, justify="left" if column == "network" else "right")
    for row in rows:
        table.add_row(*(str(v) for v in row.values()))
    Console().print(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
