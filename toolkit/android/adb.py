"""A thin client over the `adb` command line (the real one: its server, its auth, its transports).

Every shell command is built from a list of arguments, each quoted with `shlex.quote`, so paths with
spaces or quotes reach the device intact. Failures raise `DeviceError` with what to do about them.
"""

from __future__ import annotations

import shlex
import shutil
import subprocess
from dataclasses import dataclass

from toolkit.errors import DeviceError

STATE_FIXES = {
    "unauthorized": "unlock the phone and accept the 'Allow USB debugging?' prompt; if none shows, run "
                    "`adb kill-server` and reconnect it",
    "offline": "reconnect the cable (or `adb reconnect offline`) and wait until `adb devices` says 'device'",
    "no permissions": "add a udev rule for the phone (see `adb devices` help) or run the adb server as your user",
    "authorizing": "wait a moment and accept the prompt on the phone",
    "connecting": "wait until `adb devices` says 'device'",
}


@dataclass(frozen=True)
class DeviceEntry:
    serial: str
    state: str


@dataclass(frozen=True)
class ShellResult:
    code: int
    output: str  # stdout and stderr, interleaved as the runner printed them

    def tail(self, lines: int = 3) -> str:
        kept = [line.strip() for line in self.output.splitlines() if line.strip()][-lines:]
        return " | ".join(kept)


class Adb:
    """`adb` for one host; `binary` defaults to the one on PATH."""

    def __init__(self, binary: str | None = None):
        self.binary = binary or shutil.which("adb")
        if not self.binary:
            raise DeviceError("adb is not installed", "install Android platform-tools (Debian: apt-get install adb)")

    def _run(self, args: list[str], timeout: float = 60.0) -> subprocess.CompletedProcess:
        try:
            return subprocess.run([self.binary, *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                  text=True, errors="replace", timeout=timeout, stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            raise DeviceError(f"`adb {' '.join(args[:3])}` did not answer within {timeout:.0f} s",
                              "check the phone's connection (`adb devices`)") from None

    def devices(self) -> list[DeviceEntry]:
        result = self._run(["devices"])
        if result.returncode != 0:
            raise DeviceError(f"`adb devices` failed: {result.stdout.strip()[-200:]}",
                              "run `adb kill-server` and try again")
        entries = []
        for line in result.stdout.splitlines():
            if "\t" in line and not line.startswith(("*", "List of devices")):
                serial, state = line.split("\t", 1)
                entries.append(DeviceEntry(serial.strip(), state.strip()))
        return entries

    def shell(self, serial: str, argv: list[str] | str, timeout: float = 60.0) -> ShellResult:
        """Run a command on the device; a list is quoted word by word (a string is sent as it is)."""
        command = argv if isinstance(argv, str) else " ".join(shlex.quote(str(a)) for a in argv)
        result = self._run(["-s", serial, "shell", command], timeout)
        return ShellResult(result.returncode, result.stdout)

    def check_shell(self, serial: str, argv: list[str] | str, what: str, timeout: float = 60.0) -> str:
        result = self.shell(serial, argv, timeout)
        if result.code != 0:
            raise DeviceError(f"{what} failed on {serial} (exit code {result.code}: {result.tail()})",
                              "check that the phone is connected and has free space in /data/local/tmp")
        return result.output

    def push(self, serial: str, local: str, remote: str, timeout: float = 600.0) -> None:
        result = self._run(["-s", serial, "push", local, remote], timeout)
        if result.returncode != 0:
            raise DeviceError(f"adb push of {local} to {serial} failed: {result.stdout.strip()[-200:]}",
                              "check the phone's free space and connection")


def pick_devices(entries: list[DeviceEntry], wanted: str) -> list[str]:
    """Serials for `--device SERIAL|auto|all`; unusable devices fail with the fix for their state."""
    if wanted in ("auto", "all"):
        if not entries:
            raise DeviceError("no Android device is connected", "connect a phone with USB debugging on "
                                                                "(or `adb connect HOST:PORT`) and check `adb devices`")
        chosen = entries
        if wanted == "auto" and len(entries) > 1:
            raise DeviceError(f"{len(entries)} devices are connected ({', '.join(e.serial for e in entries)})",
                              "pick one with --device SERIAL, or profile all with --device all")
    else:
        chosen = [e for e in entries if e.serial == wanted]
        if not chosen:
            connected = ", ".join(e.serial for e in entries) or "none"
            raise DeviceError(f"device {wanted} is not connected (connected: {connected})",
                              "check `adb devices`, or use --device auto|all")
    for entry in chosen:
        if entry.state != "device":
            fix = STATE_FIXES.get(entry.state, "check `adb devices`")
            raise DeviceError(f"device {entry.serial} is {entry.state}", fix)
    return [e.serial for e in chosen]
