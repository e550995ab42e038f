"""Typed errors. Each one is something the user can fix: the CLI prints it as one line and exits 2."""


class ToolkitError(Exception):
    """Base class: `problem` says what is wrong, `fix` says what to do about it."""

    def __init__(self, problem: str, fix: str = ""):
        super().__init__(problem)
        self.problem = problem
        self.fix = fix

    def __str__(self) -> str:
        return f"{self.problem} ({self.fix})" if self.fix else self.problem


class ConfigError(ToolkitError):
    """A config key or value is wrong."""


class DataError(ToolkitError):
    """A dataset, folder or image cannot be used."""


class CheckpointError(ToolkitError):
    """A checkpoint is corrupt or does not fit the model."""


class ModelCardError(ToolkitError):
    """A model card is missing or does not match its model."""


class ModelFileError(ToolkitError):
    """A model file (ONNX, TFLite, MINDIR, .ms) is corrupt or of an unknown type."""


class UnsupportedOpError(ToolkitError):
    """The graph holds ops the converter or quantizer cannot handle."""


class AtolError(ToolkitError):
    """A converted model does not match its source within the tolerance."""


class CalibrationError(ToolkitError):
    """The calibration set is empty, too small or does not fit the model."""


class QuantizationError(ToolkitError):
    """The model cannot be quantized (for example NaN weights)."""


class BackendError(ToolkitError):
    """An external converter or runtime (MindSpore Lite, LiteRT, ORT) failed or is missing."""


class DeviceError(ToolkitError):
    """A phone or adb is missing or failed."""


class OutputError(ToolkitError):
    """The output location cannot be written."""


class ToolkitWarning(UserWarning):
    """Something the run worked around (for example unreadable images it skipped); the CLI prints it as one
    `warning:` line."""
