"""`mnv1-tk setup mslite` and `mnv1-tk setup qnn`."""

from pathlib import Path

import click

from toolkit.cli import main


@main.group()
def setup():
    """Install optional backends into the user cache."""


@setup.command("mslite")
@click.option("--cache", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Cache directory [default: $MNV1TK_MSLITE_DIR or ~/.cache/mnv1-tk/mslite-2.0.0].")
@click.option("--force", is_flag=True, help="Download, extract, build and test again even if the cache is ready.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def mslite(cache, force, as_json):
    """Fetch MindSpore Lite 2.0 from PyPI, extract its libraries, build the shim and smoke-test it.

    With MSLITE_HOME pointing at an official MindSpore Lite package, checks and uses that instead.
    """
    from converters.mslite.provision import setup_command

    setup_command(cache, force=force, as_json=as_json)


@setup.command("qnn")
@click.option("--cache", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Cache directory [default: $MNV1TK_QNN_DIR or ~/.cache/mnv1-tk/qnn-2.7.0].")
@click.option("--force", is_flag=True, help="Download, extract and test again even if the cache is ready.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def qnn(cache, force, as_json):
    """Fetch the onnxruntime-qnn 2.7.0 wheel (QNN execution provider, QAIRT 2.51 x86_64 HTP emulator),
    extract its libraries and compile + run a tiny int8 model on the emulated Hexagon NPU.

    It is a plugin for the installed onnxruntime (>= 1.32); `convert --to qnn` and the compiled
    models' runtime use it.
    """
    from converters.qnn.provision import setup_command

    setup_command(cache, force=force, as_json=as_json)
