"""Parent side of the worker protocol (see `worker.py`): start a worker, send requests, turn failures into
one-line BackendErrors that end with the last lines of the worker's log."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import weakref
from pathlib import Path

import numpy as np

from toolkit.errors import BackendError

LOG_LEVEL = "2"  # MindSpore Lite's glog: warnings and errors go to the worker's log
# "[ERROR] LITE(123,7f..,python):2026-01-01-00:00:00.000.000 [path/file.cc:12] Function] message"
_GLOG_LINE = re.compile(r"^\[(?P<level>[A-Z]+)\] \S+ \[(?P<where>[^\]]+)\] (?P<func>[^\]]+)\] (?P<msg>.*)$")
_HARMLESS = ("MindirModelLoader: Import model failed",)  # logged by every conversion (see ANCHORS.md)


def log_tail(path: Path, lines: int = 3) -> str:
    """The last error lines of a MindSpore Lite log (or its last lines), shortened and joined with ' | '."""
    try:
        text = Path(path).read_text(errors="replace").splitlines()
    except OSError:
        return ""
    parsed = []
    for line in text:
        match = _GLOG_LINE.match(line.strip())
        if match:
            parsed.append((match["level"], f"{match['func']}: {match['msg'].strip()}"))
        elif line.strip():
            parsed.append(("TEXT", line.strip()))
    errors = [msg for level, msg in parsed if level == "ERROR" and not any(h in msg for h in _HARMLESS)]
    chosen = errors[-lines:] if errors else [msg for _, msg in parsed[-lines:]]
    return " | ".join(message[:200] for message in chosen)


def _scratch_dir() -> Path:
    """Private directory for the .npy files exchanged with the worker (in RAM where /dev/shm exists)."""
    shm = Path("/dev/shm")
    base = shm if shm.is_dir() and os.access(shm, os.W_OK) else None
    return Path(tempfile.mkdtemp(prefix="mnv1tk-mslite-", dir=base))


class WorkerProcess:
    """One `python -m converters.mslite.worker` child. Use as a context manager or call `close()`."""

    def __init__(self, shim: Path, *, purpose: str):
        self.purpose = purpose
        self.scratch = _scratch_dir()
        self.log_path = self.scratch / "worker.log"
        env = dict(os.environ, GLOG_v=LOG_LEVEL, PYTHONUNBUFFERED="1")
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "converters.mslite.worker", "--shim", str(shim)],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, env=env, text=True, bufsize=1)
        self._finalizer = weakref.finalize(self, _shutdown, self.process, self.scratch)
        self._read_reply("starting")

    def request(self, cmd: str, *, action: str, fix: str = "", **fields) -> dict:
        """Send one request; a failed reply or a dead worker raises BackendError naming `action`.

        `fix` says what the user can do; the path of the full log is added to it.
        """
        try:
            self.process.stdin.write(json.dumps({"cmd": cmd, **fields}) + "\n")
            self.process.stdin.flush()
        except (BrokenPipeError, ValueError):
            pass  # the reply read below reports how the worker died
        return self._read_reply(action, fix)

    def _read_reply(self, action: str, fix: str = "") -> dict:
        line = self.process.stdout.readline()
        if not line:
            code = self.process.wait()
            how = f"was killed by {signal.Signals(-code).name}" if code < 0 else f"exited with code {code}"
            raise self._error(f"MindSpore Lite {how} while {action}", fix)
        reply = json.loads(line)
        if not reply.get("ok"):
            raise self._error(f"MindSpore Lite failed while {action}: {reply.get('error', '?')}", fix)
        return reply

    def _error(self, problem: str, fix: str) -> BackendError:
        tail = log_tail(self.log_path)
        kept = Path(tempfile.gettempdir()) / f"mnv1tk-mslite-{self.process.pid}.log"
        shutil.copyfile(self.log_path, kept)
        return BackendError(problem + (f" [log: {tail}]" if tail else ""),
                            f"{fix}; full log: {kept}" if fix else f"full log: {kept}")

    def run(self, batch: np.ndarray, *, action: str) -> np.ndarray:
        source, result = self.scratch / "input.npy", self.scratch / "output.npy"
        np.save(source, batch)
        self.request("run", action=action, input=str(source), output=str(result))
        return np.load(result)

    def close(self) -> None:
        self._finalizer()

    def __enter__(self) -> "WorkerProcess":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _shutdown(process: subprocess.Popen, scratch: Path) -> None:
    if process.poll() is None:
        try:
            process.stdin.write(json.dumps({"cmd": "quit"}) + "\n")
            process.stdin.close()
            process.wait(timeout=10)
        except (BrokenPipeError, ValueError, subprocess.TimeoutExpired):
            process.kill()
            process.wait()
    for stream in (process.stdin, process.stdout):
        with contextlib.suppress(OSError):  # a dead worker leaves unflushed input behind
            stream.close()
    shutil.rmtree(scratch, ignore_errors=True)
