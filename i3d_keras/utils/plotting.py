"""Matplotlib for the PNG plots, without a display (the "Agg" backend)."""


def pyplot():
    """`matplotlib.pyplot` with the file-only "Agg" backend (imported lazily: heavy)."""
    import matplotlib  # noqa: PLC0415

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt  # noqa: PLC0415

    return plt
