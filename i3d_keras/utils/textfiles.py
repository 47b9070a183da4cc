"""Reading the small text files users name: lists of videos, class names, listings.

A binary file named like a text file (a `.keras` renamed `.txt`, a video given
as `--labels`) must be a clear error, never thousands of garbage lines.
"""

from pathlib import Path
from typing import Union

PathLike = Union[str, "Path"]


class NotTextError(ValueError):
    """A file that is not UTF-8 text (binary data, a NUL byte, another encoding)."""

    def __init__(self, path, size):
        super().__init__(f"'{path}' holds binary data or is not UTF-8 ({size} bytes)")
        self.path, self.size = path, size


def read_text_file(path: PathLike) -> str:
    """A text file's contents, decoded as UTF-8 (a byte-order mark dropped).

    Args:
        path: the file.

    Returns:
        Its text.

    Raises:
        OSError: the file cannot be read.
        NotTextError: it holds a NUL byte or is not UTF-8; `size` is its length
            in bytes, for the caller's message.

    Example:

    >>> import tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "classes.txt")
    >>> _ = open(path, "wb").write(b"\\xef\\xbb\\xbfa\\nb\\n")
    >>> read_text_file(path).split()
    ['a', 'b']
    """
    data = Path(path).read_bytes()
    try:
        if b"\0" in data:  # valid UTF-8, but never in a text list
            raise UnicodeError("a NUL byte")
        return data.decode("utf-8-sig")
    except UnicodeError:
        raise NotTextError(path, len(data)) from None


__all__ = ["NotTextError", "read_text_file"]
