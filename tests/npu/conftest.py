"""Fixtures for the NPU tests: the real QNN setup (the onnxruntime-qnn wheel's x86_64 HTP emulator)."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def qnn_install():
    """The default QNN setup; on a fresh machine this runs `mnv1-tk setup qnn` once."""
    from converters.qnn import setup_qnn
    from converters.qnn.install import Installation

    report = setup_qnn(quiet=True)
    return Installation(report.root)
