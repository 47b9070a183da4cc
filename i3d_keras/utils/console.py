"""What the command-line tools print: their own lines only, everything with --verbose.

TensorFlow 2.21 writes its C++ start-up lines through Abseil logging before
Abseil is initialised (`WARNING: All log messages before absl::InitializeLog()
...`, `I0000 ... port.cc ...`, `E0000 ... cuda_platform.cc:52] failed call to
cuInit` on every machine without a GPU), which `TF_CPP_MIN_LOG_LEVEL` no longer
silences; OpenCV and FFmpeg print warnings about files (`[ WARN:0@9.3] global
cap.cpp:212 ...`, `[mov,mp4,m4a,3gp,3g2,mj2 @ 0x55ee657ac640] moov atom not
found`) that the tools then report themselves, clearly. A tool calls `setup()`
first, before anything imports TensorFlow or OpenCV:

* quiet (the default): what the native libraries write to the process's
  standard error (file descriptor 2) passes through a small filter process that
  drops their log lines (`is_library_noise`) and lets anything else through
  (e.g. a fatal error, or a crash report); TensorFlow's Python INFO logging is
  off; OpenCV logs errors only. The filter is a separate process so that what a
  crashing process wrote still comes out. A decoder's complaint about a file
  becomes part of that file's one-line reason (`capture_native_stderr`,
  `decoder_messages`, used by `i3d_keras.data.video`).
* `--verbose` / `-v` (or `I3D_KERAS_VERBOSE=1`): everything, unfiltered.

The conventions shared by the tools: progress and messages on standard error,
results on standard output (and in `--json FILE` where a tool has results), no
escape codes unless standard error is a terminal, and the exit codes
`EXIT_OK` (0: all done), `EXIT_FAILED` (1: some inputs failed), `EXIT_USAGE`
(2: a usage error, such as a missing flag, a model file that does not exist or
an output that would replace a file: `i3d_keras.utils.outputs`) and
`EXIT_INTERRUPTED` (130: Ctrl-C, without a traceback).

This module imports only the standard library (and absl's flags in `setup`).

Example (the start of a tool):

    from i3d_keras.utils import console
    console.setup()                  # before TensorFlow or OpenCV load

    from absl import flags  # noqa: E402

    def main(argv):
        if len(argv) < 2:
            console.fail("expected at least one VIDEO argument")
        ...

    if __name__ == "__main__":
        console.run(main)
"""

from __future__ import annotations

import atexit
import contextlib
import errno
import io
import os
import re
import subprocess
import sys
import threading
from typing import Callable, Iterator, List, Optional

#: Exit status: everything was done.
EXIT_OK = 0
#: Exit status: the tool ran, but some (or all) inputs failed; they are listed.
EXIT_FAILED = 1
#: Exit status: the command line cannot be run as given (a missing or bad flag,
#: a model or dataset that does not exist, an output that would replace a file).
EXIT_USAGE = 2
#: Exit status after Ctrl-C (128 + SIGINT, as shells report it).
EXIT_INTERRUPTED = 130

#: Environment variable: "1" shows everything (set by `--verbose`, inherited
#: by worker processes).
VERBOSE_ENV = "I3D_KERAS_VERBOSE"

# Abseil's (and glog's) line prefix: severity, MMDD, time, thread id, file:line.
_ABSL_PREFIX = re.compile(r"^([IWEF])\d{4} \d\d:\d\d:\d+\.\d+\s+\d+ [^\s\]]+:\d+\] ")
# Errors TensorFlow logs on every machine without a (working) CUDA setup, or
# when its CUDA plugins register twice. Other errors pass.
_BENIGN_ERRORS = re.compile(
    r"cuInit|cuda_platform\.cc|cuda_driver\.cc|Unable to register cu(DNN|FFT|BLAS) factory|"
    r"computation placer already registered|cuda_(dnn|fft|blas)\.cc|"
    r"oneDNN custom operations")
_NOISE_LINES = (
    re.compile(r"^WARNING: All log messages before absl::InitializeLog\(\) is called"),
    # The second line of TensorFlow's cpu_feature_guard INFO message.
    re.compile(r"^To enable the following instructions: .*rebuild TensorFlow"),
    # LiteRT's own logger at INFO ("INFO: Created TensorFlow Lite XNNPACK delegate for CPU.").
    re.compile(r"^INFO: "),
    # The TFLite converter's quantiser, once per int8 conversion.
    re.compile(r"^fully_quantize: \d+, inference_type: \d+, input_inference_type: "),
)
# OpenCV's logger: "[ WARN:0@9.333] global cap.cpp:212 open VIDEOIO(FFMPEG): ...".
_OPENCV = re.compile(r"^\[\s*(WARN|INFO|DEBUG|VERBOSE|ERROR|FATAL)\s*:[^\]]*\]\s*(.*)$")
# FFmpeg's av_log: "[mov,mp4,m4a,3gp,3g2,mj2 @ 0x55ee657ac640] moov atom not found".
_FFMPEG = re.compile(r"^\[([\w,.\-/ ]+) @ (?:0x)?[0-9a-fA-F]+\]\s*(.*)$")
# OpenCV lines that only say that OpenCV tried a backend (not about the file).
_OPENCV_BACKEND_CHATTER = re.compile(r"backend is generally available but can't be used|"
                                     r"VIDEOIO\(\w+\): can't (create|find)")

_state = {"mode": "library", "filter": None, "stderr_fd": None}
_capture_lock = threading.Lock()


def is_library_noise(line: str) -> bool:
    """Whether a line of native standard error is a library's log chatter.

    True for TensorFlow's Abseil INFO and WARNING lines, its errors about a
    missing CUDA setup, Abseil's "All log messages before
    absl::InitializeLog()" notice, OpenCV's log lines below ERROR and FFmpeg's
    messages about a file (the tools report bad files themselves). False for
    anything else, e.g. a fatal error or a Python traceback.

    Example:

    >>> is_library_noise("I0000 00:00:1796.1  4016 port.cc:153] oneDNN custom operations are on.")
    True
    >>> is_library_noise("INFO: Created TensorFlow Lite XNNPACK delegate for CPU.")
    True
    >>> is_library_noise("Traceback (most recent call last):")
    False
    """
    line = line.rstrip("\r\n")
    match = _ABSL_PREFIX.match(line)
    if match:
        severity = match.group(1)
        return severity in "IW" or (severity == "E" and bool(_BENIGN_ERRORS.search(line)))
    if any(p.match(line) for p in _NOISE_LINES):
        return True
    match = _OPENCV.match(line)
    if match:
        return match.group(1) not in ("ERROR", "FATAL")
    return bool(_FFMPEG.match(line))


def decoder_messages(text: str) -> List[str]:
    """FFmpeg's and OpenCV's complaints in captured native output, without
    their prefixes, in order and without repeats (e.g. `["moov atom not
    found"]`); OpenCV's notes about which backends it tried are left out.

    Example:

    >>> decoder_messages("[mov,mp4,m4a,3gp,3g2,mj2 @ 0x55ee657ac640] moov atom not found\\n")
    ['moov atom not found']
    """
    found: List[str] = []
    for line in text.splitlines():
        match = _FFMPEG.match(line.strip()) or _OPENCV.match(line.strip())
        if not match:
            continue
        message = match.group(2).strip()
        if match.re is _OPENCV:
            if _OPENCV_BACKEND_CHATTER.search(message):
                continue
            # "global cap_ffmpeg_impl.hpp:1234 open Could not ..." -> the message.
            message = re.sub(r"^global\s+\S+:\d+\s+(\w+\s+)?", "", message)
        if message and message not in found:
            found.append(message)
    return found


def is_verbose() -> bool:
    """True with `--verbose` (after `setup`) or `I3D_KERAS_VERBOSE=1`."""
    return _state["mode"] == "verbose" or os.environ.get(VERBOSE_ENV, "") not in ("", "0")


def is_quiet() -> bool:
    """True when a tool called `setup()` without `--verbose`."""
    return _state["mode"] == "quiet"


class CapturedText:
    """What `capture_native_stderr` caught (`text`, set when the block ends)."""

    def __init__(self):
        self.text = ""
        self.captured = False


@contextlib.contextmanager
def capture_native_stderr() -> Iterator[CapturedText]:
    """Catches what native code (FFmpeg, OpenCV, TensorFlow) writes to file
    descriptor 2 while the block runs.

    Yields a `CapturedText` whose `text` is filled in when the block ends. Only
    one thread captures at a time: a block entered while another thread
    captures runs without capturing (`captured` stays False). The caller decides
    what to show of it (see `pass_through`).

    Example:

    >>> with capture_native_stderr() as caught:
    ...     _ = os.write(2, b"[mov,mp4 @ 0x1] moov atom not found\\n")
    >>> decoder_messages(caught.text)
    ['moov atom not found']
    """
    caught = CapturedText()
    if not _capture_lock.acquire(blocking=False):
        yield caught
        return
    import tempfile  # noqa: PLC0415

    try:
        try:
            sys.stderr.flush()
        except (AttributeError, ValueError, OSError):
            pass
        with tempfile.TemporaryFile() as tmp:
            saved = os.dup(2)
            os.dup2(tmp.fileno(), 2)
            caught.captured = True
            try:
                yield caught
            finally:
                os.dup2(saved, 2)
                os.close(saved)
                tmp.seek(0)
                caught.text = tmp.read().decode("utf-8", errors="replace")
    finally:
        _capture_lock.release()


def pass_through(text: str) -> None:
    """Writes captured native output on to standard error as it would have
    come out without the capture: all of it in a library or with --verbose,
    without the libraries' chatter in a quiet tool."""
    if not text:
        return
    if is_quiet() and not is_verbose():
        text = "".join(line for line in text.splitlines(keepends=True)
                       if not is_library_noise(line))
    if text:
        os.write(2, text.encode("utf-8", errors="replace"))


def _filter_loop(in_fd: int = 0, out_fd: int = 1) -> None:
    """Copies `in_fd` to `out_fd` line by line without library chatter (the
    filter process; runs until every writer has closed the pipe)."""
    pending = b""
    while True:
        try:
            chunk = os.read(in_fd, 65536)
        except InterruptedError:
            continue
        except KeyboardInterrupt:  # Ctrl-C reaches the whole process group
            continue
        if not chunk:
            break
        pending += chunk
        *lines, pending = re.split(rb"(?<=[\n\r])", pending)
        kept = b"".join(ln for ln in lines
                        if not is_library_noise(ln.decode("utf-8", errors="replace")))
        if kept:
            os.write(out_fd, kept)
    if pending and not is_library_noise(pending.decode("utf-8", errors="replace")):
        os.write(out_fd, pending)


def _start_filter() -> None:
    """Routes file descriptor 2 through a filter process; Python's
    `sys.stderr` keeps writing to the real standard error (a terminal stays a
    terminal for progress lines)."""
    real = os.dup(2)
    read_end, write_end = os.pipe()
    code = ("import importlib.util as u, signal, sys\n"
            "signal.signal(signal.SIGINT, signal.SIG_IGN)\n"
            f"s = u.spec_from_file_location('_i3d_keras_console', {os.path.abspath(__file__)!r})\n"
            "m = u.module_from_spec(s); s.loader.exec_module(m); m._filter_loop(0, 1)\n")
    try:
        proc = subprocess.Popen([sys.executable, "-I", "-S", "-c", code], stdin=read_end,
                                stdout=real, stderr=real, close_fds=True)
    except OSError:  # cannot start a process: stay unfiltered
        for fd in (real, read_end, write_end):
            os.close(fd)
        return
    os.close(read_end)
    try:
        sys.stderr.flush()
    except (AttributeError, ValueError, OSError):
        pass
    os.dup2(write_end, 2)
    os.close(write_end)
    old = sys.stderr
    sys.stderr = io.TextIOWrapper(
        io.FileIO(real, "w", closefd=False), encoding=getattr(old, "encoding", None) or "utf-8",
        errors="backslashreplace", line_buffering=True, write_through=True)
    _state.update(filter=proc, stderr_fd=real)
    atexit.register(_stop_filter)


def _stop_filter() -> None:
    proc = _state.get("filter")
    if proc is None:
        return
    _state["filter"] = None
    try:
        sys.stderr.flush()
    except (ValueError, OSError):
        pass
    # Writes after this go straight to the real standard error; the filter ends
    # once no (worker) process holds the pipe.
    os.dup2(_state["stderr_fd"], 2)
    try:
        proc.wait(timeout=2)
    except subprocess.TimeoutExpired:
        pass


def _verbose_in_argv(argv: List[str]) -> Optional[bool]:
    value = None
    for arg in argv[1:]:
        if arg == "--":
            break
        if arg in ("-v", "--verbose"):
            value = True
        elif arg == "--noverbose":
            value = False
        elif arg.startswith("--verbose="):
            value = arg.split("=", 1)[1].lower() in ("1", "true", "t", "yes", "y")
    return value


def setup(argv: Optional[List[str]] = None, verbose: Optional[bool] = None,
          force: bool = False) -> bool:
    """Makes a tool quiet (or, with `--verbose`, not): call it first.

    Defines the `--verbose` flag (`-v` is accepted for it; absl's own
    verbosity flag stays `--verbosity`), reads it from `argv` (default
    `sys.argv`, rewritten in place for `-v`), and sets the environment that
    TensorFlow, OpenCV and worker processes read when they start.

    Only a tool run as a script is set up: called from a module imported by
    other code (a test importing a tool), it changes nothing unless `force`.

    Args:
        argv: the command line (default `sys.argv`).
        verbose: overrides the command line.
        force: set up even when not called from `__main__`.

    Returns:
        Whether the tool runs verbose.
    """
    from absl import flags  # noqa: PLC0415 (light: no TensorFlow)

    if "verbose" not in flags.FLAGS:
        flags.DEFINE_bool("verbose", False, "Show everything the libraries print (TensorFlow's "
                          "start-up and INFO logs, OpenCV and FFmpeg warnings); -v for short.")
    if not force and sys._getframe(1).f_globals.get("__name__") != "__main__":  # noqa: SLF001
        return is_verbose()  # a tool imported as a module (e.g. by a test) changes nothing
    argv = sys.argv if argv is None else argv
    in_argv = _verbose_in_argv(argv)
    argv[:] = [a if a != "-v" else "--verbose" for a in argv]
    if verbose is None:
        verbose = in_argv if in_argv is not None else \
            os.environ.get(VERBOSE_ENV, "") not in ("", "0")
    if _state["mode"] != "library":  # called twice: keep the first set-up
        return _state["mode"] == "verbose"
    if verbose:
        _state["mode"] = "verbose"
        os.environ[VERBOSE_ENV] = "1"
        # An explicit setting wins; else TensorFlow's C++ INFO lines as well.
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "0")
        return True
    _state["mode"] = "quiet"
    os.environ[VERBOSE_ENV] = "0"
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("OPENCV_LOG_LEVEL", "ERROR")
    os.environ.setdefault("GRPC_VERBOSITY", "ERROR")
    import logging  # noqa: PLC0415

    # TensorFlow's Python INFO lines ("Assets written to ...", "Sharding callback
    # duration ...") and warnings about tracing.
    logging.getLogger("tensorflow").setLevel(logging.ERROR)
    import warnings  # noqa: PLC0415

    # The libraries' Python warnings (Keras' "Your input ran out of data", the
    # converter's "Statistics for quantized inputs were expected"): --verbose shows them.
    warnings.filterwarnings("ignore", module=r"(keras|tensorflow|tf_keras|ai_edge_litert)\b")
    if "cv2" in sys.modules:  # imported already: the environment is read too late
        with contextlib.suppress(Exception):
            sys.modules["cv2"].setLogLevel(2)  # errors only
    _start_filter()
    return False


def program_name() -> str:
    """The tool's name for its messages: `predict` for `tools/predict.py`."""
    return os.path.splitext(os.path.basename(sys.argv[0] or "i3d_keras"))[0]


def fail(message: str, code: int = EXIT_USAGE) -> None:
    """Prints `NAME: error: message` to standard error and exits with `code`
    (default `EXIT_USAGE`; `EXIT_FAILED` when inputs failed). An interrupt
    (`EXIT_INTERRUPTED`) prints `NAME: message`."""
    prefix = "" if code == EXIT_INTERRUPTED else "error: "
    print(f"{program_name()}: {prefix}{message}", file=sys.stderr, flush=True)
    sys.exit(code)


def info(message: str) -> None:
    """A tool's own message (what it will do, where it wrote): standard error."""
    print(message, file=sys.stderr, flush=True)


def plural(count: int, noun: str, plural_form: Optional[str] = None) -> str:
    """`"1 frame"`, `"2 frames"`, `"0 videos"`.

    Example:

    >>> plural(1, "frame"), plural(3, "class", "classes")
    ('1 frame', '3 classes')
    """
    return f"{count} {noun if count == 1 else (plural_form or noun + 's')}"


def stderr_is_terminal() -> bool:
    """Whether standard error is a terminal (escape codes and in-place lines)."""
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


#: `OSError`s of the machine, not of i3d_keras: the tools say them in one line.
_SYSTEM_ERRNOS = frozenset(getattr(errno, name) for name in (
    "ENOSPC", "EDQUOT", "EROFS", "EACCES", "EPERM", "EMFILE", "ENFILE", "ENOMEM")
    if hasattr(errno, name))


def run(main: Callable[[List[str]], Optional[int]], argv: Optional[List[str]] = None, *,
        interrupted: str = "interrupted", arguments: bool = False) -> None:
    """`absl.app.run(main)` with the tools' exit codes and messages.

    * A bad flag or value: `NAME: error: ...`, exit `EXIT_USAGE` (`--help`: 0).
    * Arguments besides the flags, to a tool that takes none (`arguments`
      False): a usage error, never silently ignored (`describe x.keras` would
      describe a default model instead of the file).
    * An `i3d_keras.utils.outputs.OutputError` from anywhere (an output that
      would replace a file, an input where an output goes, settings that
      differ from a resumable run's): one sentence, exit `EXIT_USAGE`.
    * Ctrl-C: `NAME: <interrupted>`, exit `EXIT_INTERRUPTED`, no traceback
      (a resumable tool says "interrupted; rerun the same command to resume").
    * Any other exception is a bug of the package: its traceback, then a line
      asking to report it, exit `EXIT_FAILED`.

    Args:
        main: the tool's `main(argv)`.
        argv: the command line (default `sys.argv`).
        interrupted: what to say after Ctrl-C.
        arguments: the tool takes arguments besides its flags (videos).
    """
    from absl import app, flags  # noqa: PLC0415

    from i3d_keras.utils import outputs  # noqa: PLC0415

    def parse(args):
        help_asked = any(a in ("--help", "-?", "--helpshort", "--helpfull", "--helpxml")
                         for a in args[1:])
        try:
            remaining = flags.FLAGS(args)
        except flags.Error as error:
            fail(f"{error}. Pass --help to see the flags.")
        except SystemExit as stop:
            if help_asked and stop.code == 1:
                sys.exit(EXIT_OK)
            raise
        # absl raises its logging to INFO after parsing unless --verbosity was
        # given; the tools keep Python's INFO logs for --verbose.
        if flags.FLAGS["verbosity"].using_default_value:
            flags.FLAGS.verbosity = 0 if is_verbose() else -1
        if not arguments and len(remaining) > 1:
            fail(f"{program_name()} takes flags only (a value needs its flag: --NAME=VALUE; "
                 f"pass --help to see them). Received: unexpected arguments {remaining[1:]}")
        return remaining

    def guarded(args):
        try:
            return main(args)
        except outputs.OutputError as error:
            fail(str(error))
        except KeyboardInterrupt:
            fail(interrupted, EXIT_INTERRUPTED)
        except BrokenPipeError:  # `tool ... | head`: the reader has gone; stop quietly
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            sys.exit(EXIT_FAILED)
        except (SystemExit, app.UsageError):
            raise
        except Exception as error:  # noqa: BLE001 (a bug: show it, and say so)
            from i3d_keras.utils import downloads  # noqa: PLC0415

            if isinstance(error, downloads.DownloadError):  # it says how to go on offline
                fail(str(error), EXIT_FAILED)
            if isinstance(error, OSError) and error.errno in _SYSTEM_ERRNOS:
                # The system's refusal (a full disk, a read-only folder): not a bug.
                fail(str(error), EXIT_FAILED)
            import traceback  # noqa: PLC0415

            traceback.print_exc()
            fail("this is a bug in i3d_keras, not in what you gave; please report it with "
                 "the command and the traceback above", EXIT_FAILED)
        return None

    try:
        app.run(guarded, argv=argv, flags_parser=parse)
    except KeyboardInterrupt:  # during the flags or absl's own start-up
        fail(interrupted, EXIT_INTERRUPTED)


__all__ = [
    "EXIT_FAILED", "EXIT_INTERRUPTED", "EXIT_OK", "EXIT_USAGE", "VERBOSE_ENV", "CapturedText",
    "capture_native_stderr", "decoder_messages", "fail", "info", "is_library_noise",
    "is_quiet", "is_verbose", "pass_through", "plural", "program_name", "run", "setup",
    "stderr_is_terminal",
]
