"""Downloads of weights and class names: progress on standard error, and a
failure that says what was tried and how to go on offline.

`keras.utils.get_file` prints "Downloading data from ..." and its progress bar
on standard output, where the tools print only results, and raises a bare
`Exception` without network access. `get_file` here keeps Keras' download,
cache and hash check, moves its output to standard error and raises a
`DownloadError` (an `OSError`) naming the file, the address and the offline
way (the tools exit 1).

Example:

>>> path = get_file("model.ckpt.index", "https://example.com/model.ckpt.index",
...                 what="the RGB checkpoint", offline="pass a local checkpoint with --model",
...                 cache_subdir="i3d_keras/rgb")  # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import os
import sys


class DownloadError(OSError):
    """A download that failed; its message says how to go on offline (the
    tools print it as it is and exit 1; other `OSError`s are not this)."""


def get_file(fname: str, origin: str, *, what: str, offline: str, **kwargs) -> str:
    """`keras.utils.get_file(fname, origin, **kwargs)`, with its output on
    standard error and an `OSError` that explains a failure.

    Args:
        fname: the cached file's name.
        origin: its address.
        what: what the file is, for the message ("DeepMind's rgb_imagenet checkpoint").
        offline: how to do without the download ("pass a local checkpoint ...").
        **kwargs: `keras.utils.get_file`'s (`file_hash`, `cache_subdir`, `cache_dir`,
            `extract`, ...).

    Returns:
        The local path.

    Raises:
        DownloadError: the download failed (no network, a moved address, a wrong
            hash); an `OSError`.
    """
    import keras  # noqa: PLC0415 (only when something is downloaded)

    if kwargs.get("cache_dir"):
        # Keras replaces a cache folder it cannot write to, one that does not
        # exist yet included, by /tmp/.keras without a word.
        with contextlib.suppress(OSError):
            os.makedirs(os.path.expanduser(kwargs["cache_dir"]), exist_ok=True)
    try:
        with contextlib.redirect_stdout(sys.stderr):
            return keras.utils.get_file(fname, origin, **kwargs)
    except Exception as error:  # noqa: BLE001 (get_file raises bare Exceptions)
        cache = kwargs.get("cache_dir") or "~/.keras"
        subdir = kwargs.get("cache_subdir") or "datasets"
        raise DownloadError(f"could not download {what} from {origin} ({_short(error)}). Offline: "
                      f"{offline}; or put the file into the cache folder "
                      f"{cache}/{subdir}/ and rerun") from None


def _short(error: BaseException) -> str:
    text = " ".join(str(error).split()) or type(error).__name__
    # Keras: "URL fetch failure on <origin>: None -- [Errno -2] Name or service not known".
    text = text.rsplit(" -- ", 1)[-1]
    return text if len(text) <= 200 else text[:197] + "..."


__all__ = ["DownloadError", "get_file"]
