"""`mnv1-tk`: the command line. Each command body is one call to a documented package function."""

from __future__ import annotations

import os
import sys

import click

from toolkit import __version__
from toolkit.errors import ToolkitError


class Group(click.Group):
    """Turns every ToolkitError, and click's own usage errors, into one line on stderr and exit code 2
    (a traceback with --debug)."""

    def main(self, *args, **kwargs):
        kwargs["standalone_mode"] = False
        try:
            return super().main(*args, **kwargs)
        except click.UsageError as exc:
            where = f"mnv1-tk {exc.ctx.command.name} --help" if exc.ctx and exc.ctx.parent else "mnv1-tk --help"
            click.secho(f"error: {exc.format_message()} (see `{where}`)", fg="red", err=True)
            sys.exit(2)
        except click.ClickException as exc:
            click.secho(f"error: {exc.format_message()}", fg="red", err=True)
            sys.exit(exc.exit_code)
        except click.Abort:
            click.echo("aborted", err=True)
            sys.exit(1)

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except ToolkitError as exc:
            if ctx.obj and ctx.obj.get("debug"):
                raise
            click.secho(f"error: {exc}", fg="red", err=True)
            sys.exit(2)
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            sys.exit(130)


@click.group(cls=Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="mnv1-tk")
@click.option("--debug", is_flag=True, help="Show tracebacks and MindSpore's own log.")
@click.pass_context
def main(ctx: click.Context, debug: bool) -> None:
    """MobileNetV1 from training to a phone: train, validate, export, convert, predict, zoo, bundle."""
    ctx.obj = {"debug": debug}
    if not debug:
        os.environ.setdefault("GLOG_v", "4")  # MindSpore: only critical messages
        os.environ.setdefault("OPENCV_LOG_LEVEL", "ERROR")  # OpenCV (also inside MindSpore's decoder): no warnings
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


# Subcommands register themselves on `main` when imported.
from toolkit.cli import train, validate, export  # noqa: E402,F401
from toolkit.cli import convert, predict  # noqa: E402,F401
from toolkit.cli import setup  # noqa: E402,F401
from toolkit.cli import zoo  # noqa: E402,F401
from toolkit.cli import bundle  # noqa: E402,F401
from toolkit.cli import profile  # noqa: E402,F401
