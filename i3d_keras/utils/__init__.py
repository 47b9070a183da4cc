"""Helpers of the tools: console output, what they write and read, downloads, plots.

- `console.py`: what the command-line tools print, their exit codes.
- `outputs.py`: the one rule for output paths (never replace without
  --overwrite, atomic writes, settings records of resumable work).
- `textfiles.py`: the text files users name (lists, class names), binary
  data refused.
- `downloads.py`: downloads that say how to go on offline.
- `plotting.py`: Matplotlib without a display, for the PNG plots.
"""

from i3d_keras import _api

__getattr__, __dir__, __all__ = _api.lazy_exports(__name__)
