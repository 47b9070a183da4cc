"""Tests of i3d_keras.utils.plotting: PNG plots without a display."""

import subprocess
import sys


def test_pyplot_draws_to_png_files_without_a_display(tmp_path):
    # A fresh process: the backend is chosen when pyplot is first imported.
    code = (
        "import os, sys; os.environ.pop('DISPLAY', None); os.environ.pop('MPLBACKEND', None)\n"
        "from i3d_keras.utils import plotting\n"
        "plt = plotting.pyplot()\n"
        "fig, ax = plt.subplots(); ax.plot([0, 1], [1, 0]); fig.savefig(sys.argv[1])\n"
        "print(plt.get_backend())\n"
    )
    png = tmp_path / "line.png"
    out = subprocess.run([sys.executable, "-c", code, str(png)], capture_output=True,
                         text=True, check=True).stdout
    assert out.strip().lower() == "agg"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 1000
