"""The one rule for what the tools write: nothing a user owns is lost.

Every tool that writes files checks its outputs here, before any work starts:

* an output file that exists is replaced only when the user asks
  (`--overwrite`), and then atomically: written beside under a temporary name,
  then renamed over the old one (`atomic_path`, `atomic_open`), so a crash
  never leaves half a file;
* an output that is one of the inputs is a usage error (`check_output_file`);
* a file where a folder is expected, or a folder where a file is expected, is
  a usage error (`check_output_dir`, `check_output_file`);
* outputs named after inputs are unique (`unique_outputs`): two inputs never
  write to one file;
* resumable work records the settings that made it (`SettingsRecord`); a rerun
  with other settings stops before any work and names the setting that
  differs, unless `--overwrite` asks to recompute.

Problems are raised as `OutputError` (a `ValueError`), which
`i3d_keras.utils.console.run` turns into one sentence and exit status 2.
This module imports only the standard library.

Example:

>>> import tempfile, os
>>> folder = tempfile.mkdtemp()
>>> target = os.path.join(folder, "results.json")
>>> path = check_output_file(target, flag="json")
>>> with atomic_open(path) as f:
...     _ = f.write("{}")
>>> check_output_file(target, flag="json")  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
i3d_keras.utils.outputs.OutputError: --json ... exists; pass --overwrite to replace it
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import Dict, Iterable, Iterator, Mapping, Optional, Sequence, Tuple, Union

PathLike = Union[str, os.PathLike]


class OutputError(ValueError):
    """An output (or input) path that cannot be used as given: a usage error."""


def _name(flag: Optional[str]) -> str:
    return f"--{flag}" if flag else "the output"


def same_file(a: PathLike, b: PathLike) -> bool:
    """Whether two paths name the same file or folder (links and `..` resolved)."""
    a, b = Path(a).expanduser(), Path(b).expanduser()
    try:
        if a.exists() and b.exists():
            return os.path.samefile(a, b)
    except OSError:
        pass
    return a.resolve() == b.resolve()


def _first_existing_ancestor(path: Path) -> Path:
    for parent in path.parents:
        if parent.exists():
            return parent
    return Path(".")


def _check_writable(folder: Path, flag: Optional[str], path: PathLike, what: str) -> None:
    """Raises `OutputError` when nothing can be created in `folder` (an
    existing folder). Tried, not asked: `os.access` says yes to root on
    read-only mounts and in `/proc`."""
    try:
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as error:
        reason = error.strerror or type(error).__name__
        raise OutputError(f"{_name(flag)} cannot be written: nothing can be created in "
                          f"{str(folder)!r} ({reason}); choose {what} you can write to. "
                          f"Received: {os.fspath(path)!r}") from None


def check_output_file(path: PathLike, *, flag: Optional[str] = None,
                      inputs: Iterable[PathLike] = (), overwrite: bool = False,
                      create_parent: bool = False) -> Path:
    """Checks that a tool may write the file `path`; call it before any work.

    Args:
        path: the output file.
        flag: the flag that named it (for the message: `json` -> `--json`).
        inputs: the files and folders the tool reads; the output must not be one.
        overwrite: an existing file may be replaced (use `atomic_path`).
        create_parent: a missing folder is created when written (else its
            absence is an error).

    Returns:
        The path, `~` expanded.

    Raises:
        OutputError: a folder at `path`; `path` is an input; the file exists
            and `overwrite` is False; its folder is missing, is a file, or
            cannot be written to.
    """
    if not os.fspath(path):
        raise OutputError(f"{_name(flag)} must name a file. Received: an empty path")
    out = Path(path).expanduser()
    if out.is_dir():
        raise OutputError(f"{_name(flag)} must be a file, and {os.fspath(path)!r} is a folder")
    for item in inputs:
        if item is not None and os.fspath(item) and same_file(out, item):
            raise OutputError(f"{_name(flag)} {os.fspath(path)!r} is one of the inputs; "
                              "choose another path (nothing was written)")
    parent = out.parent
    if parent.exists() and not parent.is_dir():
        raise OutputError(f"the folder of {_name(flag)} is a file. Received: "
                          f"{os.fspath(path)!r}")
    if not parent.exists():
        blocker = _first_existing_ancestor(out)
        if not blocker.is_dir():
            raise OutputError(f"the folder of {_name(flag)} cannot be made: {str(blocker)!r} "
                              f"is a file. Received: {os.fspath(path)!r}")
        if not create_parent:
            raise OutputError(f"the folder of {_name(flag)} does not exist. Received: "
                              f"{os.fspath(path)!r}")
    if out.exists() and not overwrite:
        raise OutputError(f"{_name(flag)} {os.fspath(path)!r} exists; pass --overwrite to "
                          "replace it")
    _check_writable(parent if parent.exists() else _first_existing_ancestor(out), flag, path,
                    "a path")
    return out


def check_output_dir(path: PathLike, *, flag: Optional[str] = "output_dir",
                     inputs: Iterable[PathLike] = ()) -> Path:
    """Checks that a tool may write into the folder `path` (made if missing).

    Args:
        path: the output folder.
        flag: the flag that named it.
        inputs: input files; the folder must not be one of them.

    Returns:
        The path, `~` expanded.

    Raises:
        OutputError: `path` is a file (or an input), cannot be made because
            one of its parents is a file, or cannot be written to.
    """
    if not os.fspath(path):
        raise OutputError(f"{_name(flag)} must name a folder. Received: an empty path")
    out = Path(path).expanduser()
    if out.exists() and not out.is_dir():
        raise OutputError(f"{_name(flag)} must be a folder, and {os.fspath(path)!r} is a file")
    for item in inputs:
        if item is not None and Path(item).is_file() and same_file(out, item):
            raise OutputError(f"{_name(flag)} {os.fspath(path)!r} is one of the inputs")
    if not out.exists():
        blocker = _first_existing_ancestor(out)
        if not blocker.is_dir():
            raise OutputError(f"{_name(flag)} cannot be made: {str(blocker)!r} is a file. "
                              f"Received: {os.fspath(path)!r}")
    _check_writable(out if out.exists() else _first_existing_ancestor(out), flag, path,
                    "a folder")
    return out


def check_input_path(path: PathLike, *, flag: Optional[str] = None, kind: str = "file",
                     what: str = "") -> Path:
    """Checks that an input exists and is a `kind` ("file", "folder" or "any").

    Raises:
        OutputError: it does not exist, or is the wrong kind.
    """
    label = f"--{flag}" if flag else "the input"
    item = Path(path).expanduser()
    what = f" ({what})" if what else ""
    if not item.exists():
        raise OutputError(f"{label}{what}: no such {kind if kind != 'any' else 'path'}. "
                          f"Received: {os.fspath(path)!r}")
    if kind == "file" and not item.is_file():
        raise OutputError(f"{label}{what} must be a file, and {os.fspath(path)!r} is a folder")
    if kind == "folder" and not item.is_dir():
        raise OutputError(f"{label}{what} must be a folder, and {os.fspath(path)!r} is a file")
    return item


def _umask() -> int:
    """The process's umask, read without changing it where the system allows
    (Linux 4.7+: `/proc/self/status`); `os.umask` can only be read by setting
    it, which for a moment would apply to files other threads create."""
    try:
        with open("/proc/self/status", encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o22)
    os.umask(mask)
    return mask


def set_default_mode(path: PathLike) -> None:
    """Gives a file or folder made by `tempfile` (private: 0600, 0700) the mode
    `open` or `mkdir` would have given it (0666 or 0777 less the umask), so that
    what a tool writes is readable as the user's other files are (TF Serving
    often runs as another user)."""
    base = 0o777 if os.path.isdir(path) else 0o666
    try:
        os.chmod(path, base & ~_umask())
    except OSError:
        pass


@contextlib.contextmanager
def atomic_path(path: PathLike) -> Iterator[Path]:
    """A temporary path beside `path` to write to; renamed over `path` when
    the block ends without an error, removed otherwise.

    The temporary name keeps the suffix (`.x.keras.tmp-123.keras`), for
    writers that choose the format by it.

    Example:

    >>> import numpy as np  # doctest: +SKIP
    >>> with atomic_path("features.npy") as tmp:  # doctest: +SKIP
    ...     np.save(tmp, np.zeros(3))
    """
    out = Path(path).expanduser()
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.tmp-", suffix=out.suffix, dir=out.parent)
    tmp = Path(tmp)
    # mkstemp makes the file private (0600); the result gets the mode of the
    # file it replaces, or what `open` would have given it (0666 less the umask).
    try:
        os.fchmod(fd, out.stat().st_mode & 0o7777 if out.exists() else 0o666 & ~_umask())
    except (OSError, AttributeError):  # no fchmod (Windows): keep mkstemp's mode
        pass
    os.close(fd)
    try:
        yield tmp
        os.replace(tmp, out)
    finally:
        if tmp.exists():
            tmp.unlink()


@contextlib.contextmanager
def atomic_open(path: PathLike, mode: str = "w", **kwargs):
    """`open(path, mode)` on a temporary file renamed over `path` at the end."""
    if "r" in mode or "a" in mode or "+" in mode:
        raise ValueError(f"`mode` must write a new file ('w', 'wb'). Received: mode={mode!r}")
    if "b" not in mode:
        kwargs.setdefault("encoding", "utf-8")
        # File names that are not UTF-8 (held with surrogates) keep their bytes.
        kwargs.setdefault("errors", "surrogateescape")
    with atomic_path(path) as tmp, open(tmp, mode, **kwargs) as f:
        yield f


def write_json(path: PathLike, value, **dump_kwargs) -> Path:
    """Writes `value` as JSON to `path`, atomically. Returns the path."""
    dump_kwargs.setdefault("indent", 1)
    with atomic_open(path) as f:
        json.dump(value, f, **dump_kwargs)
        f.write("\n")
    return Path(path)


def unique_outputs(pairs: Sequence[Tuple[PathLike, PathLike]]) -> None:
    """Raises `OutputError` when two inputs would write the same output.

    Args:
        pairs: `[(input, output), ...]`.
    """
    seen: Dict[Path, PathLike] = {}
    for source, out in pairs:
        key = Path(out).expanduser().resolve()
        if key in seen and not same_file(seen[key], source):
            first = Path(seen[key]).expanduser().resolve()
            fix = ("rename one of them (they differ only in their extension)"
                   if first.parent == Path(source).expanduser().resolve().parent else
                   "give them in their folders' common parent")
            raise OutputError(
                f"two inputs would write the same output {os.fspath(out)!r}: "
                f"{os.fspath(seen[key])!r} and {os.fspath(source)!r}; {fix}, or run them "
                "into separate output folders")
        seen.setdefault(key, source)


def common_root(paths: Iterable[PathLike]) -> Optional[Path]:
    """The deepest folder that holds all `paths` (None for no paths).

    Outputs mirrored under it (`a/x.mp4`, `b/x.mp4` -> `a/x.npy`, `b/x.npy`)
    keep inputs of the same name apart.
    """
    folders = [os.path.abspath(Path(p).expanduser().parent) for p in paths]
    if not folders:
        return None
    try:
        return Path(os.path.commonpath(folders))
    except ValueError:  # different drives (Windows)
        return None


class SettingsRecord:
    """The settings that made the outputs in a folder, kept beside them.

    Resumable tools (feature and flow extraction, dataset preparation) skip
    outputs that exist; that is right only when the rerun asks for the same
    thing. The record (a JSON file in the output folder) holds the settings
    that change the result (window, stride, model fingerprint, sizes, ...).
    `check` compares them before any work:

    * no record and no outputs yet: a new run (the record is written);
    * the same settings: resume;
    * other settings, or outputs without a record (an older version's) or an
      unreadable record: `OutputError` naming each difference, unless
      `overwrite`, which starts over (the caller recomputes every output).

    Args:
        folder: the output folder.
        name: the record's file name in it.
        flag: the flag naming the folder (for messages).

    Example:

    >>> import tempfile
    >>> record = SettingsRecord(tempfile.mkdtemp(), "features.json")
    >>> record.check({"window": 64}, has_outputs=False)
    'new'
    >>> record.check({"window": 64}, has_outputs=True)
    'resume'
    >>> record.check({"window": 32}, has_outputs=True)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    i3d_keras.utils.outputs.OutputError: --output_dir ... other settings: window 64 there, 32 now; ...
    """

    def __init__(self, folder: PathLike, name: str, flag: str = "output_dir"):
        self.folder = Path(folder).expanduser()
        self.path = self.folder / name
        self.flag = flag

    def read(self) -> Optional[Dict]:
        """The recorded settings; None when there is no record. Raises
        `ValueError` for a record that cannot be read."""
        if not self.path.exists():
            return None
        try:
            value = json.loads(self.path.read_text(encoding="utf-8"))
            settings = value["settings"]
            if not isinstance(settings, dict):
                raise TypeError(type(settings).__name__)
            return settings
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise ValueError(f"unreadable record {str(self.path)!r} ({error})") from None

    def write(self, settings: Mapping) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        write_json(self.path, {"settings": dict(settings)})

    def check(self, settings: Mapping, *, has_outputs: bool, overwrite: bool = False,
              write: bool = True) -> str:
        """Compares `settings` with the record; see the class docstring.

        Args:
            settings: JSON-able values that determine the outputs.
            has_outputs: whether the folder already holds outputs of the tool.
            overwrite: start over when anything differs.
            write: write the record (else the caller writes it with `write`).

        Returns:
            `"new"`, `"resume"` or `"recompute"` (differed, `overwrite` given).

        Raises:
            OutputError: something differs and `overwrite` is False.
        """
        settings = json.loads(json.dumps(dict(settings)))  # tuples -> lists, as stored
        try:
            recorded = self.read()
            problem = None
        except ValueError as error:
            recorded, problem = None, str(error)
        if recorded is None and problem is None and not has_outputs:
            if write:
                self.write(settings)
            return "new"
        if recorded == settings:
            return "resume"
        if problem is None and recorded is None:
            problem = "no record of the settings that made them (an older version's run?)"
        elif problem is None:
            problem = "other settings: " + differences(recorded, settings)
        if not overwrite:
            raise OutputError(
                f"--{self.flag} {str(self.folder)!r} holds outputs made with {problem}; pass "
                f"--overwrite to recompute them, or choose another --{self.flag}")
        if write:
            self.write(settings)
        return "recompute"


def differences(recorded: Mapping, settings: Mapping) -> str:
    """`"window 64 there, 32 now; stride ..."` for each key whose values differ.

    Example:

    >>> differences({"stream": "rgb", "epochs": 5}, {"stream": "flow", "epochs": 5})
    'stream rgb there, flow now'
    """
    return "; ".join(f"{key} {_show(recorded.get(key, '(unset)'))} there, "
                     f"{_show(settings.get(key, '(unset)'))} now"
                     for key in sorted(set(recorded) | set(settings))
                     if recorded.get(key) != settings.get(key))


def _show(value) -> str:
    return value if isinstance(value, str) else json.dumps(value)


__all__ = ["OutputError", "SettingsRecord", "atomic_open", "atomic_path", "check_input_path",
           "check_output_dir", "check_output_file", "common_root", "differences",
           "same_file", "set_default_mode", "unique_outputs", "write_json"]
