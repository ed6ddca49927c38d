"""PESQ beside the rest of the scoring: one helper process, fed through a pipe.

PESQ (the ITU C code of the ``pesq`` package) was half of the evaluation's scoring time, and it
holds Python's GIL, so a thread cannot run it beside the other metrics; a process can. A
multiprocessing worker would import the caller's main script again (a user's unguarded script
would run twice inside it), so the helper is a plain subprocess running one small script,
:mod:`mvsd.eval._pesq_child`, which imports numpy and pesq only.

``submit`` queues a pair and returns at once (a writer thread feeds the pipe; the queue holds
references to the caller's arrays, not copies); ``result`` waits for that pair's value. The
values are those of :func:`mvsd.eval.metrics.pesq_wb`, bit for bit (the same C code on the same
float64 samples; tests/test_metrics.py). Whatever the helper does not answer with a score — a
silent or speechless input, an error, a helper that could not start or died — is computed by
``pesq_wb`` in this process when its result is asked for, with the same warning or exception as
without the helper. A caller that fails while pairs are queued (Ctrl-C, SIGTERM) kills the helper
instead of waiting for them.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import subprocess
import sys
import threading

import numpy as np

from mvsd.audio_io import SAMPLE_RATE
from mvsd.eval import _pesq_child
from mvsd.eval._pesq_child import ERROR, HEADER, OK, RESULT
from mvsd.eval.metrics import _pair, pesq_wb

log = logging.getLogger(__name__)
CHILD = [sys.executable, _pesq_child.__file__]  # a script: it imports neither mvsd nor the caller


class PesqHelper:
    """``with PesqHelper() as h: job = h.submit(ref, deg); ...; h.result(job)``."""

    def __init__(self):
        self._pairs: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        self._answers: dict[int, tuple[int, float]] = {}
        self._done = threading.Condition()
        self._alive = True
        self._closing = False  # set by close(): the helper's end is expected from then on
        self._next = 0
        self._queue: queue.Queue = queue.Queue()
        try:
            self._proc = subprocess.Popen(
                CHILD, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
            )
        except OSError as e:
            log.warning("PESQ helper process did not start (%s): PESQ is computed in this process", e)
            self._proc, self._alive = None, False
            return
        self._writer = threading.Thread(target=self._write, name="pesq-helper-writer", daemon=True)
        self._reader = threading.Thread(target=self._read, name="pesq-helper-reader", daemon=True)
        self._writer.start()
        self._reader.start()

    def submit(self, ref: np.ndarray, deg: np.ndarray) -> int:
        """Queue wide-band PESQ of ``deg`` against ``ref``; returns a job number for :meth:`result`."""
        job, self._next = self._next, self._next + 1
        self._pairs[job] = (ref, deg)
        if self._alive:
            self._queue.put(job)
        return job

    def result(self, job: int) -> float:
        """The PESQ of job ``job`` (waits for the helper; computed here if it cannot answer)."""
        with self._done:
            self._done.wait_for(lambda: job in self._answers or not self._alive)
            status, value = self._answers.pop(job, (None, float("nan")))
        ref, deg = self._pairs.pop(job)
        return value if status == OK else pesq_wb(ref, deg)

    def _write(self) -> None:
        pipe = self._proc.stdin
        try:
            while (job := self._queue.get()) is not None:
                pair = self._pairs.get(job)
                if pair is None or not self._alive:  # the helper died: ``result`` computes it here
                    continue
                try:
                    r, d = _pair(*pair)
                except ValueError:  # lengths too different: ``result`` raises pesq_wb's error
                    self._answer(job, ERROR, float("nan"))
                    continue
                pipe.write(HEADER.pack(job, SAMPLE_RATE, len(r), len(d)))
                pipe.write(r.tobytes())
                pipe.write(d.tobytes())
                pipe.flush()
        except OSError as e:  # the helper died (BrokenPipeError)
            self._stop(f"writing to it failed ({type(e).__name__}: {e})")
        finally:
            with contextlib.suppress(OSError):
                pipe.close()

    def _read(self) -> None:
        pipe = self._proc.stdout
        while len(data := pipe.read(RESULT.size)) == RESULT.size:
            self._answer(*RESULT.unpack(data))
        if not self._closing:  # it ended before its input did: it died
            self._stop(f"it exited with code {self._proc.wait()}")
        with self._done:
            self._alive = False
            self._done.notify_all()

    def _answer(self, job: int, status: int, value: float) -> None:
        with self._done:
            self._answers[job] = (status, value)
            self._done.notify_all()

    def _stop(self, why: str) -> None:
        if self._alive:
            log.warning("PESQ helper process stopped (%s): the rest of PESQ is computed in this process", why)
        with self._done:
            self._alive = False
            self._done.notify_all()

    def close(self, abandon: bool = False) -> None:
        """End the helper: after the queued pairs (their results are there for :meth:`result`),
        or at once with ``abandon`` (the caller is failing: nobody will ask for them)."""
        if self._proc is None:
            return
        self._closing = True
        if abandon and self._proc.poll() is None:
            with self._done:
                self._alive = False  # stopped on purpose: no warning that it died
            self._proc.kill()  # the writer's next write fails and ends it
        if self._writer.is_alive():
            self._queue.put(None)  # the writer closes stdin: the helper ends
            self._writer.join()
        self._reader.join(timeout=10)
        if self._proc.poll() is None:
            self._proc.kill()
        self._proc.wait()
        self._proc.stdout.close()

    def __enter__(self) -> PesqHelper:
        return self

    def __exit__(self, exc_type, *_) -> None:
        self.close(abandon=exc_type is not None)  # e.g. Ctrl-C while scoring: no wait for the queue
