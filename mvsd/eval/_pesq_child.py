"""The helper process of :mod:`mvsd.eval.pesq_helper`, run as a script (``python _pesq_child.py``):
it imports numpy and pesq only, never mvsd or the caller's main script.

stdin: frames of ``HEADER`` (job id, sample rate, reference length, degraded length) followed by
the two signals as float64. stdout: one ``RESULT`` (job id, status, value) per frame, in order.
Ends at the end of stdin.
"""

import struct
import sys

import numpy as np
from pesq import pesq

HEADER = struct.Struct("<QQQQ")  # job id, sample rate, reference samples, degraded samples
RESULT = struct.Struct("<QBd")  # job id, status, value
OK, ERROR = 0, 1  # ERROR: no score (no speech, silence, ...); the caller computes it itself


def _read(stream, n: int) -> bytes | None:
    data = stream.read(n)
    return data if len(data) == n else None


def main() -> None:
    inp, out = sys.stdin.buffer, sys.stdout.buffer
    while (head := _read(inp, HEADER.size)) is not None:
        job, fs, n_ref, n_deg = HEADER.unpack(head)
        ref, deg = _read(inp, 8 * n_ref), _read(inp, 8 * n_deg)
        if ref is None or deg is None:
            return
        try:
            status, value = (
                OK,
                float(pesq(fs, np.frombuffer(ref, np.float64), np.frombuffer(deg, np.float64), "wb")),
            )
        except Exception:  # noqa: BLE001 - the caller computes this one itself: its warning or error
            status, value = ERROR, float("nan")
        out.write(RESULT.pack(job, status, value))
        out.flush()


if __name__ == "__main__":
    main()
