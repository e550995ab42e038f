"""The MindSpore Lite worker: a child process that loads the shim with ctypes. It never imports MindSpore.

    python -m converters.mslite.worker --shim PATH

Protocol: one JSON request per line on stdin, one JSON reply per line on the original stdout.
File descriptors 1 and 2 are then pointed at the log (the parent passes a log file as stderr),
because the native libraries print to stdout. Arrays travel as .npy files.

Requests (`cmd`):
    convert  fmk, model, output_prefix, config, input_format  -> writes output_prefix + ".ms"
    open     model, num_threads                               -> inputs, outputs (name, shape, dtype, format)
    run      input (.npy), output (.npy)                       -> runs the batch in chunks of the model's batch size
    set_timing_input  input (.npy)                             -> keeps a native input for `time`
    time                                                       -> ms: one Predict on it, timed here
    peak_rss                                                   -> mb: this process's peak resident memory
    quit
Every reply has "ok"; a failed one has "error".
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time

import numpy as np

from converters.mslite.bindings import LoadedModel, Shim, ShimError


def run_batch(model: LoadedModel, batch: np.ndarray) -> np.ndarray:
    """Run a batch of any size on a single-input model whose batch size is fixed (usually 1).

    Returns the first output, dequantized to float32 if the model outputs int8.
    """
    if len(model.inputs) != 1:
        raise ShimError(f"the model has {len(model.inputs)} inputs; only single-input models are supported")
    step = model.inputs[0].shape[0]
    if batch.shape[1:] != model.inputs[0].shape[1:]:
        raise ShimError(f"input {model.inputs[0].name} takes [*, {', '.join(map(str, model.inputs[0].shape[1:]))}], "
                        f"got {list(batch.shape)}")
    results = []
    for start in range(0, len(batch), step):
        chunk = batch[start:start + step]
        padded = np.concatenate([chunk, np.zeros((step - len(chunk),) + chunk.shape[1:], chunk.dtype)])
        output = model.predict([padded.astype(model.inputs[0].dtype, copy=False)])[0]
        results.append(model.outputs[0].dequantize(output[:len(chunk)]))
    return np.concatenate(results)


class Worker:
    def __init__(self, shim: Shim):
        self.shim = shim
        self.model: LoadedModel | None = None
        self.timing_input: list[np.ndarray] = []

    def convert(self, request: dict) -> dict:
        self.shim.convert(request["fmk"], request["model"], request["output_prefix"], request.get("config"),
                          request.get("input_format"))
        return {}

    def open(self, request: dict) -> dict:
        if self.model is not None:
            self.model.close()
        self.model = self.shim.open(request["model"], int(request.get("num_threads", 2)))
        return {"inputs": [t.to_dict() for t in self.model.inputs],
                "outputs": [t.to_dict() for t in self.model.outputs]}

    def run(self, request: dict) -> dict:
        if self.model is None:
            raise ShimError("no model is open")
        output = run_batch(self.model, np.load(request["input"]))
        np.save(request["output"], output)
        return {"shape": list(output.shape)}

    def set_timing_input(self, request: dict) -> dict:
        if self.model is None:
            raise ShimError("no model is open")
        self.timing_input = [np.load(request["input"]).astype(self.model.inputs[0].dtype, copy=False)]
        return {}

    def time(self, request: dict) -> dict:
        if not self.timing_input:
            raise ShimError("no timing input was set")
        start = time.perf_counter()
        self.model.predict(self.timing_input)
        return {"ms": (time.perf_counter() - start) * 1e3}

    def peak_rss(self, request: dict) -> dict:
        return {"mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shim", required=True)
    args = parser.parse_args(argv)
    replies = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    if "mindspore" in sys.modules:
        error = "mindspore was imported into the MindSpore Lite worker"
        replies.write(json.dumps({"ok": False, "error": error}) + "\n")
        return 1
    try:
        worker = Worker(Shim(args.shim))
    except OSError as exc:
        replies.write(json.dumps({"ok": False, "error": f"cannot load {args.shim}: {exc}"}) + "\n")
        return 1
    replies.write(json.dumps({"ok": True, "pid": os.getpid()}) + "\n")
    handlers = {"convert": worker.convert, "open": worker.open, "run": worker.run,
                "set_timing_input": worker.set_timing_input, "time": worker.time, "peak_rss": worker.peak_rss}
    for line in sys.stdin:
        request = json.loads(line)
        if request.get("cmd") == "quit":
            break
        try:
            reply = {"ok": True, **handlers[request["cmd"]](request)}
        except ShimError as exc:
            reply = {"ok": False, "error": str(exc)}
        except (KeyError, ValueError, OSError) as exc:
            reply = {"ok": False, "error": f"bad request {request.get('cmd')!r}: {type(exc).__name__}: {exc}"}
        sys.stdout.flush()
        replies.write(json.dumps(reply) + "\n")
    if worker.model is not None:
        worker.model.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
