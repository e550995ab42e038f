"""Snapdragon SoCs by the names Qualcomm gives them, and the QNN `soc_model` id the HTP backend takes.

Only ids with a public source are listed: Qualcomm's QNN SoC model numbers as ExecuTorch's Qualcomm
backend declares them (`backends/qualcomm/serialization/qc_compiler_spec.fbs`, enum QcomChipset;
SM8850 added in pytorch/executorch PR #15987). Each one compiles on the x86 HTP emulator
(tests/npu/test_qnn.py).
"""

from __future__ import annotations

from toolkit.errors import ConfigError

SOC_MODELS: dict[str, int] = {
    "SM8450": 36,  # Snapdragon 8 Gen 1, HTP v69
    "SM8475": 42,  # Snapdragon 8+ Gen 1, v69
    "SM8550": 43,  # Snapdragon 8 Gen 2, v73
    "SM8650": 57,  # Snapdragon 8 Gen 3, v75
    "SM8750": 69,  # Snapdragon 8 Elite, v79
    "SM8850": 87,  # Snapdragon 8 Elite Gen 5, v81
}


def parse_socs(text: str | tuple[str, ...] | list[str] | None) -> tuple[str, ...]:
    """`--soc SM8650,SM8750` -> ("SM8650", "SM8750"); unknown names are one ConfigError."""
    names = [t.strip().upper() for t in (text.split(",") if isinstance(text, str) else text or ()) if t.strip()]
    if not names:
        raise ConfigError("--to qnn needs the SoC(s) to compile for",
                          f"pass --soc with one of: {', '.join(SOC_MODELS)}")
    unknown = [n for n in names if n not in SOC_MODELS]
    if unknown:
        raise ConfigError(f"unknown SoC {', '.join(unknown)}",
                          f"use Qualcomm's SM names, one of: {', '.join(SOC_MODELS)} (comma-separated for several)")
    return tuple(dict.fromkeys(names))
