"""Child process of test_fuzz.py: open seeded random and mutated copies of one model with its loader.

`python -m tests.reliability.fuzz_loaders MODEL COUNT SEED WORK` writes one line per case to stdout,
`<case> ok|ToolkitError|<other exception type>`, flushed before the next case starts, so that a native crash
(the process dies) names the case it died on.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import numpy as np


def mutations(data: bytes, count: int, seed: int):
    """(name, bytes): random bytes, truncations, bit flips, overwritten runs and a zeroed header."""
    rng = np.random.RandomState(seed)
    for i in range(count):
        kind = ("random", "truncate", "flip", "overwrite", "header")[i % 5]
        buffer = bytearray(data)
        if kind == "random":
            buffer = bytearray(rng.bytes(int(rng.randint(0, 4096))))
        elif kind == "truncate":
            buffer = buffer[: int(rng.randint(0, len(buffer)))]
        elif kind == "flip":
            for position in rng.randint(0, len(buffer), size=16):
                buffer[position] ^= 1 << int(rng.randint(0, 8))
        elif kind == "overwrite":
            start = int(rng.randint(0, len(buffer)))
            buffer[start:start + 256] = rng.bytes(256)[: len(buffer) - start]
        else:
            buffer[:64] = bytes(64)
        yield f"{kind}-{i}", bytes(buffer)


def main(model: str, count: str, seed: str, work: str) -> None:
    from toolkit.errors import ToolkitError
    from toolkit.runtimes import load_predictor

    source, work_dir = Path(model), Path(work)
    target = work_dir / source.name
    shutil.copy(f"{source}.json", f"{target}.json")
    batch = np.zeros((1, 3, 32, 32), np.float32)
    for name, data in mutations(source.read_bytes(), int(count), int(seed)):
        print(name, end=" ", flush=True)
        target.write_bytes(data)
        try:
            with load_predictor(target) as predictor:
                predictor.run(batch)
            outcome = "ok"
        except ToolkitError:
            outcome = "ToolkitError"
        except Exception as exc:  # reported, and the test fails on it
            outcome = type(exc).__name__
        print(outcome, flush=True)


if __name__ == "__main__":
    main(*sys.argv[1:])
