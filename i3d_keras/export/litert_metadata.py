"""What a LiteRT file holds besides its graph: class names, streams, clip shape.

A `.tflite` file has a list of named metadata buffers (the converter writes
its own there). `export_tflite` adds one named `"i3d_keras"`, a JSON object
with the class names, the input streams, the clip shape and the
quantisation, so that a file found on a phone or passed to
`tools/predict.py` names its classes as a SavedModel does. The LiteRT
interpreter ignores it; `read_metadata` reads it from the file.

Reference: Carreira & Zisserman, "Quo Vadis, Action Recognition?", CVPR 2017
(the models these files hold).

Example:

>>> read_metadata("i3d_rgb.tflite")  # doctest: +SKIP
{'format': 1, 'class_names': ['abseiling', ...], 'streams': ['rgb'], 'frames': 16, ...}
"""

import json
from pathlib import Path

import numpy as np

#: The metadata entry's name in the file.
METADATA_NAME = "i3d_keras"
_FORMAT = 1
_FILE_IDENTIFIER = b"TFL3"


def add_metadata(flatbuffer, metadata):
    """Returns the LiteRT flatbuffer `flatbuffer` with `metadata` added (or replaced).

    Args:
        flatbuffer: the bytes of a `.tflite` file (the converter's output).
        metadata: a JSON-able dict.

    Returns:
        The new file's bytes: the same graph and weights, re-serialised the
        way the converter writes its own metadata.
    """
    import flatbuffers  # noqa: PLC0415 (installed with TensorFlow)
    from tensorflow.lite.python import schema_py_generated as schema  # noqa: PLC0415

    model = schema.ModelT.InitFromPackedBuf(bytearray(flatbuffer), 0)
    buffer = schema.BufferT()
    buffer.data = np.frombuffer(json.dumps({"format": _FORMAT, **metadata}).encode(), np.uint8)
    model.buffers = model.buffers or []
    model.metadata = [m for m in (model.metadata or [])
                      if m.name.decode("utf-8", "replace") != METADATA_NAME]
    model.buffers.append(buffer)
    entry = schema.MetadataT()
    entry.name = METADATA_NAME
    entry.buffer = len(model.buffers) - 1
    model.metadata.append(entry)
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=_FILE_IDENTIFIER)
    return bytes(builder.Output())


def read_metadata(path):
    """The `"i3d_keras"` metadata of a LiteRT file, or None (a file from elsewhere).

    Raises:
        ValueError: not a LiteRT file, or its entry is not readable JSON.
    """
    from tensorflow.lite.python import schema_py_generated as schema  # noqa: PLC0415

    data = Path(path).read_bytes()
    if not schema.Model.ModelBufferHasIdentifier(data, 0):
        raise ValueError(f"Expected a LiteRT (.tflite) file. Received: {str(path)!r}")
    model = schema.Model.GetRootAsModel(data, 0)
    for i in range(model.MetadataLength()):
        entry = model.Metadata(i)
        if entry.Name() is not None and entry.Name().decode("utf-8", "replace") == METADATA_NAME:
            raw = model.Buffers(entry.Buffer()).DataAsNumpy()
            try:
                value = json.loads(bytes(raw).decode("utf-8"))
            except (TypeError, ValueError) as error:
                raise ValueError(f"Unreadable {METADATA_NAME!r} metadata in {str(path)!r}: "
                                 f"{error}") from None
            if not isinstance(value, dict):
                raise ValueError(f"Unreadable {METADATA_NAME!r} metadata in {str(path)!r}: "
                                 f"a {type(value).__name__}, not an object")
            return value
    return None


__all__ = ["METADATA_NAME", "add_metadata", "read_metadata"]
