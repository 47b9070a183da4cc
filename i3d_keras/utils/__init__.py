"""Helpers of the tools: console output and plots.

- `console.py`: what the command-line tools print, their exit codes.
- `plotting.py`: Matplotlib without a display, for the PNG plots.
"""

from i3d_keras import _api

__getattr__, __dir__, __all__ = _api.lazy_exports(__name__)
