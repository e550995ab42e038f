"""`mnv1-tk setup mslite` and `mnv1-tk setup android-runners`."""

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
    from converters.mslite.install import setup_command

    setup_command(cache, force=force, as_json=as_json)


@setup.command("android-runners")
@click.option("--from", "source", type=click.Path(path_type=Path),
              help="A benchmark_model binary, a MindSpore Lite android-aarch64 package (folder or archive), or a "
                   "folder with them [default: download from the official release URLs].")
@click.option("--sha256", help="Expected SHA-256 of the --from file, checked before installing.")
@click.option("--version", "version", help="Version to record (default: from the package name).")
def android_runners(source, sha256, version):
    """Put the official on-device runners (LiteRT benchmark_model, MindSpore Lite benchmark) in the user cache.

    \b
    Examples:
      mnv1-tk setup android-runners --from ~/Downloads/android_aarch64_benchmark_model --version 2.16
      mnv1-tk setup android-runners --from mindspore-lite-2.0.0-android-aarch64.tar.gz --sha256 HEX
    """
    from toolkit.android.runners import setup_command

    setup_command(source, sha256=sha256, version=version)
