"""Process-pool map with a progress line (ETA) shared by the data tools.

Private helper for `i3d_keras.data.flow` and `i3d_keras.data.datasets`. Imports no
TensorFlow itself.
"""

from __future__ import annotations

import concurrent.futures as futures
import multiprocessing
import sys
import time
from typing import Any, Callable, Iterator, Optional, Sequence, TextIO, Tuple

from i3d_keras.runtime import hardware


#: Errors of items lost to a crashed worker start with this; callers may retry.
CRASH_PREFIX = "worker process crashed"


def mirrored_output_path(video, output_dir, root=None):
    """`output_dir / (video relative to root)`: class folders survive, and
    same-named videos in different folders do not collide. Without `root` (or
    for a video outside it), `output_dir / video.name`. The caller picks the
    file name from the returned path (e.g. `.with_name(...)`)."""
    from pathlib import Path  # noqa: PLC0415

    video = Path(video)
    rel = Path(video.name)
    if root is not None:
        try:
            rel = video.resolve().relative_to(Path(root).resolve())
        except ValueError:
            pass
    return Path(output_dir) / rel


def default_num_workers() -> int:
    """One worker per CPU core available to this process."""
    return hardware.available_cores()


def _format_seconds(seconds: float) -> str:
    if seconds != seconds or seconds == float("inf"):
        return "?"
    seconds = int(round(seconds))
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


class Progress:
    """A one-line progress report with rate and ETA, written to stderr.

    On a terminal the line is rewritten in place (at most 5 times a second);
    otherwise (logs, CI, pipes: no escape codes) a line is printed per step,
    or at most every `interval` seconds where one is given. The rate and ETA
    count finished work only: items resumed from an earlier run and failed
    items are left out.
    """

    def __init__(self, total: int, desc: str = "", unit: str = "videos",
                 stream: Optional[TextIO] = None, interval: float = 0.0,
                 enabled: bool = True):
        self.total = total
        self.desc = desc
        self.unit = unit
        self.stream = sys.stderr if stream is None else stream
        self.enabled = enabled
        self.done = 0
        self.failed = 0
        self.skipped = 0
        self._start = time.monotonic()
        self._last = float("-inf")  # the first update always prints
        self._interval = interval
        self._tty = bool(getattr(self.stream, "isatty", lambda: False)())

    def update(self, n: int = 1, failed: int = 0, skipped: int = 0) -> None:
        """Counts `n` finished items (`failed` / `skipped` of them)."""
        self.done += n
        self.failed += failed
        self.skipped += skipped
        now = time.monotonic()
        if self.done >= self.total or now - self._last >= (0.2 if self._tty else self._interval):
            self._last = now
            self._write()

    def line(self) -> str:
        elapsed = time.monotonic() - self._start
        # The rate of finished work: resumed items cost no time, and a failure
        # (often at once, e.g. a file that does not open) says nothing of it.
        worked = self.done - self.skipped - self.failed
        rate = worked / elapsed if elapsed > 0 and worked > 0 else None
        remaining = self.total - self.done
        eta = 0.0 if remaining == 0 else (remaining / rate if rate else float("nan"))
        pct = 100.0 * self.done / self.total if self.total else 100.0
        extra = []
        if self.failed:
            extra.append(f"{self.failed} failed")
        if self.skipped:
            extra.append(f"{self.skipped} already done")
        extra = f" ({', '.join(extra)})" if extra else ""
        unit = self.unit[:-1] if self.total == 1 and self.unit.endswith("s") else self.unit
        rate = "? " if rate is None else f"{rate:.2f} "
        return (f"{self.desc}{' ' if self.desc else ''}{self.done}/{self.total} {unit} "
                f"{pct:5.1f}%{extra} | {rate}{self.unit}/s | elapsed "
                f"{_format_seconds(elapsed)} | ETA {_format_seconds(eta)}")

    def _write(self) -> None:
        if not self.enabled:
            return
        if self._tty:
            self.stream.write("\r" + self.line() + "\x1b[K")  # erase the rest of the old line
            if self.done >= self.total:
                self.stream.write("\n")
        else:
            self.stream.write(self.line() + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self.enabled and self.done < self.total:
            self._write()
            if self._tty:
                self.stream.write("\n")


def _call_safely(fn: Callable[[Any], Any], item: Any) -> Tuple[bool, Any]:
    """Runs in the worker: exceptions come back as text (some exception
    classes cannot be unpickled, which would look like a crashed pool)."""
    try:
        return True, fn(item)
    except Exception as e:
        return False, f"{type(e).__name__}: {e}"


def parallel_map(fn: Callable[[Any], Any], items: Sequence[Any], num_workers: int = 0,
                 mp_context: Optional[str] = "spawn",
                 max_in_flight: Optional[int] = None) -> Iterator[Tuple[int, Any, Optional[str]]]:
    """Runs `fn` over `items` in worker processes; yields as results arrive.

    A worker that raises, or dies (e.g. a decoder crash), costs only its item:
    the pool is rebuilt and the rest continue.

    Args:
      fn: a picklable top-level function of one item.
      items: the inputs.
      num_workers: processes; 0 means one per core; 1 runs in this process
        (no pickling; easiest to debug).
      mp_context: multiprocessing start method. "spawn" is the default because
        forking a process that already runs TensorFlow threads can deadlock.
      max_in_flight: bound on submitted-but-unfinished items (memory).

    Yields:
      (index, result, error): error is None on success, else "Type: message".
      Items lost to a crashed worker get an error starting with `CRASH_PREFIX`.

    Raises:
      RuntimeError: the pool broke 3 times in a row without finishing any item
        (workers cannot start at all, e.g. out of memory).
    """
    num_workers = num_workers or default_num_workers()
    if num_workers <= 1:
        for i, item in enumerate(items):
            try:
                yield i, fn(item), None
            except Exception as e:  # one bad item never stops the job
                yield i, None, f"{type(e).__name__}: {e}"
        return
    ctx = multiprocessing.get_context(mp_context) if mp_context else None
    max_in_flight = max_in_flight or 2 * num_workers
    pending_items = iter(enumerate(items))
    pool = futures.ProcessPoolExecutor(num_workers, mp_context=ctx)
    in_flight = {}
    broken_in_a_row = 0
    try:
        while True:
            while len(in_flight) < max_in_flight:
                nxt = next(pending_items, None)
                if nxt is None:
                    break
                in_flight[pool.submit(_call_safely, fn, nxt[1])] = nxt[0]
            if not in_flight:
                break
            done, _ = futures.wait(in_flight, return_when=futures.FIRST_COMPLETED)
            broken = False
            for fut in done:
                i = in_flight.pop(fut)
                try:
                    ok, result = fut.result()
                except futures.process.BrokenProcessPool:
                    broken = True
                    yield i, None, CRASH_PREFIX + " (this item or one running beside it)"
                    continue
                except Exception as e:
                    broken_in_a_row = 0
                    yield i, None, f"{type(e).__name__}: {e}"
                    continue
                broken_in_a_row = 0
                yield (i, result, None) if ok else (i, None, result)
            if broken:
                broken_in_a_row += 1
                if broken_in_a_row >= 3:
                    raise RuntimeError(
                        "Worker processes crashed 3 times in a row without finishing any item; "
                        "they may be unable to start (memory, or a script run without an "
                        "`if __name__ == '__main__':` guard under the 'spawn' start method)")
                # Every unfinished future of a broken pool fails; report them.
                for fut, i in list(in_flight.items()):
                    yield i, None, CRASH_PREFIX + " (this item or one running beside it)"
                in_flight.clear()
                pool.shutdown(wait=False, cancel_futures=True)
                pool = futures.ProcessPoolExecutor(num_workers, mp_context=ctx)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
