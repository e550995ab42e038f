"""`mnv1-tk setup mslite`."""

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
