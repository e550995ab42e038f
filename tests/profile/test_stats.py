"""MACs and parameters from the graph IR, against the MobileNet paper's table."""

from __future__ import annotations

import onnx
import pytest

from converters.ir.stats import count_macs, count_params
from converters.onnx_import import import_onnx
from tests.models import zoo_card
from tests.onnx_models import mobilenet_like

MOBILENET_V1_BLOCKS = ((64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2), (512, 1), (512, 1), (512, 1),
                       (512, 1), (512, 1), (1024, 2), (1024, 1))


@pytest.mark.parametrize("width, paper_macs, paper_params", [(1.0, 569e6, 4.2e6), (0.25, 41e6, 0.47e6)])
def test_mobilenet_v1_224_matches_the_paper(width, paper_macs, paper_params, tmp_path):
    path = tmp_path / "m.onnx"
    onnx.save(mobilenet_like(224, width, 1000, blocks=MOBILENET_V1_BLOCKS), path)
    card = zoo_card(width, 224).replace(num_classes=1000, labels=tuple(map(str, range(1000))))
    graph = import_onnx(path, card)
    # Table 6 of Howard et al. 2017 rounds to these; weights + biases of the BN-folded network.
    assert count_macs(graph) == pytest.approx(paper_macs, rel=0.003)
    assert count_params(graph) == pytest.approx(paper_params, rel=0.01)


def test_tflite_graph_counts_like_its_onnx_source(profile_models):
    from toolkit.profile.model_info import model_stats

    assert model_stats(profile_models.tflite) == model_stats(profile_models.onnx) == model_stats(profile_models.ms)
    assert model_stats(profile_models.onnx)[0] > 0
