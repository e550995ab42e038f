"""`mnv1-tk`: the command line. Each command body is one call to a documented package function."""

from __future__ import annotations

import logging
import os
import signal
import sys
import warnings
from errno import EDQUOT, EFBIG, ENOSPC

import click

from toolkit import __version__
from toolkit.errors import ToolkitError, ToolkitWarning


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
        except OSError as exc:
            if exc.errno not in DISK_FULL or (ctx.obj and ctx.obj.get("debug")):
                raise
            where = f" writing {exc.filename}" if exc.filename else ""
            click.secho(f"error: no space left{where}: {exc.strerror} (free disk space, or pass --out on "
                        "another disk; what was written before is intact)", fg="red", err=True)
            sys.exit(2)
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            sys.exit(130)


DISK_FULL = (ENOSPC, EFBIG, EDQUOT)  # also a file over RLIMIT_FSIZE (Python ignores SIGXFSZ)


def _terminated(signum, frame):
    """SIGTERM stops a command like Ctrl-C: MindSpore turns Ctrl-C into SIGTERM.

    Every MindSpore graph run (a training step, an evaluation batch) starts in
    `GraphScheduler::Run`, which calls `RegisterGlobalSignalHandler(DefaultIntHandler)`: that replaces
    Python's SIGINT handler with one that only does `kill(getpid(), SIGTERM)`, and it is never put back.
    SIGTERM's default action would end the process at once, without the `interrupted` line and without
    removing partial output; raising KeyboardInterrupt here lets the command clean up as for Ctrl-C. The
    two cannot be told apart, so a SIGTERM from elsewhere (`kill PID`) also stops cleanly with exit 130.
    """
    raise KeyboardInterrupt


_default_showwarning = warnings.showwarning


def _show_warning(message, category, filename, lineno, file=None, line=None):
    """A ToolkitWarning is one `warning: ...` line on stderr; other warnings keep Python's format."""
    if issubclass(category, ToolkitWarning):
        click.secho(f"warning: {message}", fg="yellow", err=True)
    else:
        _default_showwarning(message, category, filename, lineno, file, line)


@click.group(cls=Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="mnv1-tk")
@click.option("--debug", is_flag=True, help="Show tracebacks and MindSpore's own log.")
@click.pass_context
def main(ctx: click.Context, debug: bool) -> None:
    """MobileNetV1 from training to a phone: train, validate, export, convert, predict, zoo, profile, bundle."""
    ctx.obj = {"debug": debug}
    warnings.showwarning = _show_warning
    signal.signal(signal.SIGTERM, _terminated)
    if not debug:
        os.environ.setdefault("GLOG_v", "4")  # MindSpore: only critical messages
        os.environ.setdefault("OPENCV_LOG_LEVEL", "ERROR")  # OpenCV (also inside MindSpore's decoder): no warnings
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        # MindSpore's Python logger prints even CRITICAL lines (a failed checkpoint save) before raising; the
        # error line says it all. It is created lazily under this name, so disable it ahead.
        logging.getLogger(f"ME.mindspore.log.{os.getpid()}").disabled = True


# Subcommands register themselves on `main` when imported.
from toolkit.cli import train, validate, export  # noqa: E402,F401
from toolkit.cli import convert, predict  # noqa: E402,F401
from toolkit.cli import setup  # noqa: E402,F401
from toolkit.cli import zoo  # noqa: E402,F401
from toolkit.cli import bundle  # noqa: E402,F401
from toolkit.cli import profile  # noqa: E402,F401
