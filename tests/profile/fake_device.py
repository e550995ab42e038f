"""A simulated Android phone for the real `adb` client and server: the device side of the adb protocol.

No phone is attached here, so the tests connect Debian's `adb` server to this fixture over TCP
(`adb connect 127.0.0.1:PORT`, as for a phone in wireless debugging). It speaks:
    CNXN without auth (or, in the `unauthorized` mode, AUTH tokens it never accepts);
    OPEN / OKAY / WRTE / CLSE streams with one OKAY per WRTE in both directions;
    shell v2 (stdout, stderr and exit-code packets) and shell v1;
    sync: STAT, LIST, SEND, RECV, QUIT.
A sandbox directory is its file system (device path /x/y is <root>/x/y). Its shell is a tiny command
interpreter for what the profiler sends: mkdir, rm, chmod, ls, cat, grep ., getprop, echo, env VAR=..,
timeout, taskset, `;` and `&&`, and executables. A pushed LiteRT `benchmark_model` or MindSpore Lite
`benchmark` (recognised by file name) really runs the pushed model on this host (LiteRT in-process,
MindSpore Lite in its worker process) and prints the official output format, so its figures are real
measurements of the host CPU. What a phone would add and this host cannot measure: a per-op profile
(the fake splits the measured invoke time over LiteRT's nodes by their MACs) and GPU/NNAPI/NPU delegates
(requested flags are recorded in `commands`, the model runs on the CPU).
Every device stops itself after `lifetime_s`.
"""

from __future__ import annotations

import contextlib
import glob
import os
import queue
import shlex
import shutil
import socket
import stat
import struct
import sys
import threading
import time
from pathlib import Path

import numpy as np

A_VERSION = 0x01000001
MAX_PAYLOAD = 256 * 1024
CHUNK = 64 * 1024
COMMANDS = {name: struct.unpack("<I", name.encode())[0] for name in ("CNXN", "AUTH", "OPEN", "OKAY", "CLSE", "WRTE")}
NAMES = {value: name for name, value in COMMANDS.items()}
AUTH_TOKEN, AUTH_SIGNATURE, AUTH_RSAPUBLICKEY = 1, 2, 3
SHELL_STDIN, SHELL_STDOUT, SHELL_STDERR, SHELL_EXIT, SHELL_CLOSE_STDIN = 0, 1, 2, 3, 4
TIMEOUT_EXIT = 124  # toybox/GNU timeout

DEFAULT_PROPS = {
    "ro.product.model": "Pixel 7", "ro.product.name": "panther", "ro.product.device": "panther",
    "ro.soc.model": "GS201", "ro.board.platform": "gs201", "ro.build.version.release": "14",
    "ro.build.version.sdk": "34", "ro.product.cpu.abi": "arm64-v8a",
}
DEFAULT_MAX_FREQ_KHZ = (1803000, 1803000, 1803000, 1803000, 2348000, 2348000, 2850000, 2850000)


def free_port() -> int:
    """A free TCP port on 127.0.0.1 outside 5555-5585 (the range the adb server scans for emulators)."""
    while True:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        if not 5555 <= port <= 5585:
            return port


class _Timeout(Exception):
    pass


class _Stream:
    """One adb stream on the device side."""

    def __init__(self, connection: "_Connection", local_id: int, remote_id: int):
        self.connection = connection
        self.local_id = local_id
        self.remote_id = remote_id
        self.inbox: queue.Queue[bytes | None] = queue.Queue()
        self.acked = threading.Event()
        self.closed = False
        self._buffer = b""

    def write(self, data: bytes) -> None:
        for start in range(0, len(data), CHUNK):
            if self.closed:
                return
            self.acked.clear()
            self.connection.send("WRTE", self.local_id, self.remote_id, data[start:start + CHUNK])
            if not self.acked.wait(30):
                raise ConnectionError("host never acknowledged a WRTE")

    def read_exact(self, size: int) -> bytes:
        while len(self._buffer) < size:
            chunk = self.inbox.get()
            if chunk is None:
                raise EOFError
            self._buffer += chunk
        data, self._buffer = self._buffer[:size], self._buffer[size:]
        return data

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.connection.send("CLSE", self.local_id, self.remote_id)


class _Connection:
    """One TCP connection from the adb server."""

    def __init__(self, device: "FakeDevice", sock: socket.socket):
        self.device = device
        self.sock = sock
        self.lock = threading.Lock()
        self.streams: dict[int, _Stream] = {}
        self.next_id = 1

    def send(self, command: str, arg0: int, arg1: int, data: bytes = b"") -> None:
        code = COMMANDS[command]
        header = struct.pack("<6I", code, arg0, arg1, len(data), sum(data) & 0xFFFFFFFF, code ^ 0xFFFFFFFF)
        with self.lock, contextlib.suppress(OSError):
            self.sock.sendall(header + data)

    def _recv_exact(self, size: int) -> bytes:
        data = b""
        while len(data) < size:
            chunk = self.sock.recv(size - len(data))
            if not chunk:
                raise EOFError
            data += chunk
        return data

    def serve(self) -> None:
        try:
            while True:
                code, arg0, arg1, length, _, _ = struct.unpack("<6I", self._recv_exact(24))
                self.dispatch(NAMES.get(code, "?"), arg0, arg1, self._recv_exact(length) if length else b"")
        except (EOFError, OSError):
            pass
        finally:
            for stream in self.streams.values():
                stream.closed = True
                stream.inbox.put(None)
            with contextlib.suppress(OSError):
                self.sock.close()

    def dispatch(self, command: str, arg0: int, arg1: int, data: bytes) -> None:
        device = self.device
        if command == "CNXN":
            if device.unauthorized:
                self.send("AUTH", AUTH_TOKEN, 0, os.urandom(20))
            else:
                self.send("CNXN", A_VERSION, MAX_PAYLOAD, device.banner())
        elif command == "AUTH":
            if arg0 == AUTH_SIGNATURE:  # never accepted: ask for the next key; a public key gets no answer
                self.send("AUTH", AUTH_TOKEN, 0, os.urandom(20))
        elif command == "OPEN" and not device.unauthorized:
            local_id, self.next_id = self.next_id, self.next_id + 1
            stream = _Stream(self, local_id, arg0)
            self.streams[local_id] = stream
            service = data.rstrip(b"\0").decode()
            self.send("OKAY", local_id, arg0)
            threading.Thread(target=device.serve_stream, args=(stream, service), daemon=True).start()
        elif command == "OKAY":
            stream = self.streams.get(arg1)
            if stream:
                stream.acked.set()
        elif command == "WRTE":
            stream = self.streams.get(arg1)
            if stream:
                stream.inbox.put(data)
                self.send("OKAY", arg1, arg0)
        elif command == "CLSE":
            stream = self.streams.pop(arg1, None)
            if stream:
                stream.inbox.put(None)
                stream.acked.set()
                if not stream.closed:
                    stream.closed = True
                    self.send("CLSE", arg1, arg0)


class FakeDevice:
    """A simulated phone listening on 127.0.0.1:`port`, its file system under `root`."""

    def __init__(self, root: Path, *, port: int | None = None, props: dict | None = None,
                 max_freq_khz: tuple[int, ...] = DEFAULT_MAX_FREQ_KHZ, battery_temp_c: float = 31.0,
                 unauthorized: bool = False, lifetime_s: float = 300.0):
        self.root = Path(root)
        self.port = port or free_port()
        self.props = dict(DEFAULT_PROPS, **(props or {}))
        self.unauthorized = unauthorized
        self.lifetime_s = lifetime_s
        self.commands: list[str] = []  # every shell command received, as sent
        self._listener: socket.socket | None = None
        self._connections: list[_Connection] = []
        self._write_system_files(max_freq_khz, battery_temp_c)

    @property
    def serial(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _write_system_files(self, max_freq_khz, battery_temp_c) -> None:
        for cpu, khz in enumerate(max_freq_khz):
            path = self.host_path(f"/sys/devices/system/cpu/cpu{cpu}/cpufreq/cpuinfo_max_freq")
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(f"{khz}\n")
        self.set_battery_temp(battery_temp_c)
        self.host_path("/data/local/tmp").mkdir(parents=True, exist_ok=True)

    def set_battery_temp(self, celsius: float) -> None:
        path = self.host_path("/sys/class/power_supply/battery/temp")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"{int(round(celsius * 10))}\n")  # tenths of a degree, as the kernel reports it

    def host_path(self, device_path: str, cwd: str = "/") -> Path:
        absolute = os.path.normpath(os.path.join(cwd, device_path))
        return self.root / absolute.lstrip("/")

    def banner(self) -> bytes:
        p = self.props
        return (f"device::ro.product.name={p['ro.product.name']};ro.product.model={p['ro.product.model']};"
                f"ro.product.device={p['ro.product.device']};features=shell_v2,cmd").encode()

    # ---- lifetime ---------------------------------------------------------------------------
    def start(self) -> "FakeDevice":
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", self.port))
        self._listener.listen(4)
        threading.Thread(target=self._accept, daemon=True).start()
        self._stopper = threading.Timer(self.lifetime_s, self.stop)
        self._stopper.daemon = True
        self._stopper.start()
        return self

    def _accept(self) -> None:
        while True:
            try:
                sock, _ = self._listener.accept()
            except OSError:
                return
            connection = _Connection(self, sock)
            self._connections.append(connection)
            threading.Thread(target=connection.serve, daemon=True).start()

    def stop(self) -> None:
        self._stopper.cancel()
        with contextlib.suppress(OSError):
            self._listener.close()
        for connection in self._connections:
            with contextlib.suppress(OSError):
                connection.sock.shutdown(socket.SHUT_RDWR)

    def __enter__(self) -> "FakeDevice":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def files(self, device_dir: str = "/data/local/tmp") -> list[str]:
        """Every file and folder under a device directory (to check that nothing was left behind)."""
        base = self.host_path(device_dir)
        return sorted(str(p.relative_to(base)) for p in base.rglob("*"))

    # ---- services ---------------------------------------------------------------------------
    def serve_stream(self, stream: _Stream, service: str) -> None:
        try:
            if service.startswith("shell"):
                options, _, command = service.partition(":")
                self._serve_shell(stream, command, v2="v2" in options.split(","))
            elif service == "sync:":
                self._serve_sync(stream)
        except (EOFError, ConnectionError):
            pass
        finally:
            stream.close()

    def _serve_shell(self, stream: _Stream, command: str, v2: bool) -> None:
        def emit(kind: int):
            def write(text: str) -> None:
                data = text.encode()
                if v2:
                    stream.write(struct.pack("<BI", kind, len(data)) + data)
                else:
                    stream.write(data)
            return write

        self.commands.append(command)
        code = Shell(self, emit(SHELL_STDOUT), emit(SHELL_STDERR)).run(command)
        if v2:
            stream.write(struct.pack("<BIB", SHELL_EXIT, 1, code & 0xFF))

    def _serve_sync(self, stream: _Stream) -> None:
        while True:
            request, length = struct.unpack("<4sI", stream.read_exact(8))
            if request == b"QUIT":
                return
            path = stream.read_exact(length).decode()
            if request == b"STAT":
                stream.write(b"STAT" + self._stat(path))
            elif request == b"LIST":
                self._list(stream, path)
            elif request == b"SEND":
                self._receive_file(stream, path)
            elif request == b"RECV":
                self._send_file(stream, path)
            else:
                self._fail(stream, f"unknown sync request {request!r}")
                return

    def _stat(self, path: str) -> bytes:
        try:
            info = self.host_path(path).stat()
        except OSError:
            return struct.pack("<3I", 0, 0, 0)
        return struct.pack("<3I", info.st_mode & 0xFFFFFFFF, info.st_size & 0xFFFFFFFF, int(info.st_mtime))

    def _list(self, stream: _Stream, path: str) -> None:
        directory = self.host_path(path)
        entries = sorted(directory.iterdir()) if directory.is_dir() else []
        for entry in entries:
            info, name = entry.stat(), entry.name.encode()
            stream.write(b"DENT" + struct.pack("<4I", info.st_mode, info.st_size & 0xFFFFFFFF,
                                               int(info.st_mtime), len(name)) + name)
        stream.write(b"DONE" + struct.pack("<4I", 0, 0, 0, 0))

    def _receive_file(self, stream: _Stream, spec: str) -> None:
        path, _, mode = spec.rpartition(",")
        target = self.host_path(path)
        data = bytearray()
        while True:
            kind, value = struct.unpack("<4sI", stream.read_exact(8))
            if kind == b"DATA":
                data += stream.read_exact(value)
            elif kind == b"DONE":
                break
            else:
                self._fail(stream, f"unexpected {kind!r} in SEND")
                return
        if not target.parent.is_dir():
            self._fail(stream, f"secure_mkdirs failed: {os.path.dirname(path)}: No such file or directory")
            return
        target.write_bytes(bytes(data))
        os.chmod(target, int(mode) & 0o777)
        stream.write(b"OKAY" + struct.pack("<I", 0))

    def _send_file(self, stream: _Stream, path: str) -> None:
        source = self.host_path(path)
        if not source.is_file():
            self._fail(stream, f"remote object '{path}' does not exist")
            return
        data = source.read_bytes()
        for start in range(0, len(data), CHUNK):
            chunk = data[start:start + CHUNK]
            stream.write(b"DATA" + struct.pack("<I", len(chunk)) + chunk)
        stream.write(b"DONE" + struct.pack("<I", 0))

    @staticmethod
    def _fail(stream: _Stream, message: str) -> None:
        data = message.encode()
        stream.write(b"FAIL" + struct.pack("<I", len(data)) + data)


class Shell:
    """The device's `sh -c`: a few toybox commands and the two runners."""

    def __init__(self, device: FakeDevice, out, err):
        self.device = device
        self.out = out
        self.err = err
        self.deadline: float | None = None
        self.env: dict[str, str] = {}

    def run(self, command: str) -> int:
        lexer = shlex.shlex(command, posix=True, punctuation_chars=";&")
        lexer.whitespace_split = True
        try:
            tokens = list(lexer)
        except ValueError as exc:
            self.err(f"/system/bin/sh: syntax error: {exc}\n")
            return 2
        code, words, joiner = 0, [], ";"
        for token in tokens + [";"]:
            if token in (";", "&&"):
                if words and (joiner == ";" or code == 0):
                    code = self.execute(words)
                words, joiner = [], token
            else:
                words.append(token)
        return code

    def _expand(self, words: list[str]) -> list[str]:
        expanded = []
        for word in words:
            if "*" in word:
                matches = sorted(glob.glob(str(self.device.host_path(word))))
                root = str(self.device.root)
                expanded += ["/" + os.path.relpath(m, root) for m in matches] or [word]
            else:
                expanded.append(word)
        return expanded

    def execute(self, words: list[str]) -> int:
        try:
            return self._execute(self._expand(words))
        except _Timeout:
            return TIMEOUT_EXIT

    def _execute(self, words: list[str]) -> int:
        name, args = words[0], words[1:]
        path = self.device.host_path
        if name == "env":
            while args and "=" in args[0]:
                key, _, value = args.pop(0).partition("=")
                self.env[key] = value
            return self._execute(args)
        if name == "timeout":
            self.deadline = time.monotonic() + float(args[0].rstrip("s"))
            return self._execute(args[1:])
        if name == "taskset":
            mask = int(args[0], 16)
            cpus = len(list(path("/sys/devices/system/cpu").glob("cpu[0-9]*")))
            if mask == 0 or mask >> cpus:
                self.err(f"taskset: sched_setaffinity: Invalid argument\n")
                return 1
            return self._execute(args[1:])
        if name == "mkdir":
            for target in [a for a in args if not a.startswith("-")]:
                path(target).mkdir(parents="-p" in args, exist_ok="-p" in args)
            return 0
        if name == "rm":
            for target in [a for a in args if not a.startswith("-")]:
                p = path(target)
                if p.is_dir() and "r" in "".join(a for a in args if a.startswith("-")):
                    shutil.rmtree(p)
                elif p.exists():
                    p.unlink()
            return 0
        if name == "chmod":
            for target in args[1:]:
                os.chmod(path(target), int(args[0], 8))
            return 0
        if name == "ls":
            for target in args or ["/"]:
                p = path(target)
                if not p.exists():
                    self.err(f"ls: {target}: No such file or directory\n")
                    return 1
                self.out("".join(f"{c.name}\n" for c in sorted(p.iterdir())) if p.is_dir() else f"{target}\n")
            return 0
        if name == "cat":
            for target in args:
                if not path(target).is_file():
                    self.err(f"cat: {target}: No such file or directory\n")
                    return 1
                self.out(path(target).read_text())
            return 0
        if name == "grep" and args and args[0] == ".":
            files = args[1:]
            found = [(f, line) for f in files if path(f).is_file() for line in path(f).read_text().splitlines() if line]
            self.out("".join(f"{f}:{line}\n" if len(files) > 1 else f"{line}\n" for f, line in found))
            return 0 if found else 1
        if name == "getprop":
            props = self.device.props
            if args:
                self.out(f"{props.get(args[0], '')}\n")
            else:
                self.out("".join(f"[{k}]: [{v}]\n" for k, v in sorted(props.items())))
            return 0
        if name == "echo":
            self.out(" ".join(args) + "\n")
            return 0
        return self._run_binary(name, args)

    def _run_binary(self, name: str, args: list[str]) -> int:
        binary = self.device.host_path(name)
        if "/" not in name or not binary.is_file():
            self.err(f"/system/bin/sh: {name}: inaccessible or not found\n")
            return 127
        if not os.access(binary, os.X_OK):
            self.err(f"/system/bin/sh: {name}: can't execute: Permission denied\n")
            return 126
        flags = dict(a[2:].partition("=")[::2] for a in args if a.startswith("--"))
        if binary.name.endswith("benchmark_model"):
            return LiteRTRunner(self, flags).run()
        if binary.name == "benchmark":
            missing = [lib for lib in ("libmindspore-lite.so", "libc++_shared.so") if not any(
                self.device.host_path(d, "/").joinpath(lib).is_file()
                for d in self.env.get("LD_LIBRARY_PATH", "").split(":") if d)]
            if missing:
                self.err(f'CANNOT LINK EXECUTABLE "{name}": library "{missing[0]}" not found: needed by main '
                         f"executable\n")
                return 1
            return MindSporeLiteRunner(self, flags).run()
        self.err(f"/system/bin/sh: {name}: not executable: 64-bit ELF file\n")
        return 126

    def check_deadline(self) -> None:
        if self.deadline is not None and time.monotonic() > self.deadline:
            raise _Timeout


def _vm_rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _stat_line(times_us: list[float]) -> str:
    """tsl::Stat::OutputToStream, with the percentiles of newer builds."""
    t = np.asarray(times_us)
    if len(t) == 1:
        return f"count=1 curr={int(t[0])}"
    p5, median, p95 = (int(np.percentile(t, q, method="lower")) for q in (5, 50, 95))
    return (f"count={len(t)} first={int(t[0])} curr={int(t[-1])} min={int(t.min())} max={int(t.max())} "
            f"avg={t.mean():g} std={int(t.std())} p5={p5} median={median} p95={p95}")


class LiteRTRunner:
    """`benchmark_model` as the official binary prints it (INFO: lines on stderr), measured on host LiteRT."""

    def __init__(self, shell: Shell, flags: dict[str, str]):
        self.shell = shell
        self.flags = flags

    def log(self, text: str) -> None:
        self.shell.err("".join(f"INFO: {line}\n" if line else "\n" for line in text.split("\n")))

    def run(self) -> int:
        from toolkit.runtimes.litert import _interpreter_module

        f, shell = self.flags, self.shell
        graph = f.get("graph", "")
        threads, runs, warmup = int(f.get("num_threads", -1)), int(f.get("num_runs", 50)), int(f.get("warmup_runs", 1))
        xnnpack = f.get("use_xnnpack", "true") != "false"
        self.log(f"STARTING!\nLog parameter values verbosely: [0]\nMin num runs: [{runs}]\nNum threads: [{threads}]\n"
                 f"Min warmup runs: [{warmup}]\nGraph: [{graph}]\n"
                 f"Enable op profiling: [{int(f.get('enable_op_profiling') == 'true')}]\n"
                 f"Use xnnpack: [{int(xnnpack)}]")
        model = shell.device.host_path(graph)
        if not model.is_file():
            shell.err(f"ERROR: Could not open '{graph}'.\nERROR: Failed to mmap model {graph}\n")
            return 1
        module = _interpreter_module()
        rss_before = _vm_rss_mb()
        start = time.perf_counter()
        try:
            interpreter = module.Interpreter(
                model_path=str(model), num_threads=threads if threads > 0 else None,
                experimental_op_resolver_type=module.OpResolverType.AUTO if xnnpack else
                module.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
            interpreter.allocate_tensors()
        except (ValueError, RuntimeError):
            shell.err("ERROR: The model is not a valid Flatbuffer buffer\nERROR: Benchmarking failed.\n")
            return 1
        init_us = (time.perf_counter() - start) * 1e6
        rss_init = _vm_rss_mb()
        self.log(f"Loaded model {graph}\nThe input model file size (MB): {model.stat().st_size / 1e6:g}\n"
                 f"Initialized session in {init_us / 1e3:.3f}ms.")
        detail = interpreter.get_input_details()[0]
        interpreter.set_tensor(detail["index"], np.zeros(detail["shape"], detail["dtype"]))

        def invoke() -> float:
            shell.check_deadline()
            t0 = time.perf_counter()
            interpreter.invoke()
            return (time.perf_counter() - t0) * 1e6

        self.log("Running benchmark for at least 1 iterations and at least 0.5 seconds but terminate if "
                 "exceeding 150 seconds.")
        warm = [invoke() for _ in range(max(warmup, 1))]
        self.log(_stat_line(warm) + "\n")
        self.log(f"Running benchmark for at least {runs} iterations and at least 1 seconds but terminate if "
                 f"exceeding 150 seconds.")
        timed = [invoke() for _ in range(runs)]
        self.log(_stat_line(timed) + "\n")
        self.log(f"Inference timings in us: Init: {int(init_us)}, First inference: {int(warm[0])}, "
                 f"Warmup (avg): {np.mean(warm):g}, Inference (avg): {np.mean(timed):g}\n"
                 f"Note: as the benchmark tool itself affects memory footprint, the following is only APPROXIMATE "
                 f"to the actual memory footprint of the model at runtime. Take the information at your discretion.\n"
                 f"Memory footprint delta from the start of the tool (MB): init={rss_init - rss_before:g} "
                 f"overall={_vm_rss_mb() - rss_before:g}")
        if f.get("report_peak_memory_footprint") == "true":
            self.log(f"Overall peak memory footprint (MB) via periodic monitoring: {_vm_rss_mb() - rss_before:g}")
        if f.get("enable_op_profiling") == "true":
            self._op_profile(interpreter, model, float(np.mean(timed)) / 1e3)
        return 0

    def _op_profile(self, interpreter, model: Path, total_ms: float) -> None:
        """The measured invoke time split over the nodes by MACs (a phone would time each node)."""
        from converters.ir.stats import node_macs
        from toolkit.profile.model_info import tflite_graph

        graph = tflite_graph(model)
        macs = {int(n.name[2:]): node_macs(graph, n) for n in graph.nodes}
        ops = interpreter._get_ops_details()
        weights = np.array([macs.get(op["index"], 0) for op in ops], dtype=np.float64) + 1.0
        times = total_ms * weights / weights.sum()
        header = ("\t             [node type]\t  [first]\t [avg ms]\t     [%]\t  [cdf%]\t  [mem KB]"
                  "\t[times called]\t[Name]")
        lines = ["Operator-wise Profiling Info for Regular Benchmark Runs:",
                 "============================== Run Order ==============================", header]
        cdf = 0.0
        for op, ms in zip(ops, times):
            cdf += 100 * ms / total_ms
            lines.append(f"\t{op['op_name']:>24}\t{ms:13.3f}\t{ms:9.3f}\t{100 * ms / total_ms:7.3f}%\t{cdf:7.3f}%\t"
                         f"{0:10.3f}\t{1:9d}\t[{op['op_name'].lower()}_{op['index']}]:{op['index']}")
        self.shell.err("\n".join(lines) + "\n\n")


class MindSporeLiteRunner:
    """MindSpore Lite `benchmark` as the official binary prints it (on stdout), measured on host MindSpore Lite."""

    def __init__(self, shell: Shell, flags: dict[str, str]):
        self.shell = shell
        self.flags = flags

    def run(self) -> int:
        from converters.mslite import ensure_mslite
        from toolkit.errors import BackendError

        f, shell = self.flags, self.shell
        path = f.get("modelFile", "")
        threads, loops, warmup = (int(f.get("numThreads", 2)), int(f.get("loopCount", 10)),
                                  int(f.get("warmUpLoopCount", 3)))
        shell.out(f"ModelPath = {path}\nModelType = MindIR\nInDataPath = \nConfigFilePath = \nInDataType = bin\n"
                  f"LoopCount = {loops}\nDeviceType = {f.get('device', 'CPU')}\nAccuracyThreshold = 0.5\n"
                  f"CosineDistanceThreshold = -1.1\nWarmUpLoopCount = {warmup}\nNumThreads = {threads}\n"
                  f"InterOpParallelNum = 1\nFp16Priority = {int(f.get('enableFp16') == 'true')}\n"
                  f"EnableParallel = 0\ncalibDataPath = \ncpuBindMode = {f.get('cpuBindMode', '1')}\n")
        model = shell.device.host_path(path)
        try:
            session = ensure_mslite(quiet=True).open(model, threads)
        except BackendError:
            shell.err(f"ERROR [mindspore/lite/tools/benchmark/benchmark_unified_api.cc:1] CompileGraph] "
                      f"ms_model_.Build failed while running {model.name}\nRun Benchmark {model.name} Failed : -1\n")
            return 1
        with session:
            spec = session.inputs[0]
            session.set_timing_input(np.zeros(spec.shape, spec.dtype))
            for _ in range(warmup):
                shell.check_deadline()
                session.time_once()
            times = []
            for _ in range(loops):
                shell.check_deadline()
                times.append(session.time_once())
        shell.out(f"Model = {model.name}, NumThreads = {threads}, MinRunTime = {min(times):f} ms, "
                  f"MaxRuntime = {max(times):f} ms, AvgRunTime = {np.mean(times):f} ms\n"
                  f"Run Benchmark {model.name} Success.\n")
        return 0


if __name__ == "__main__":  # a device to try by hand: python -m tests.profile.fake_device DIR
    with FakeDevice(Path(sys.argv[1]), lifetime_s=600) as device:
        print(f"adb connect {device.serial}", flush=True)
        time.sleep(600)
