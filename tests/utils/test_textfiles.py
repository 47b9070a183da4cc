"""Tests for i3d_keras.utils.textfiles: text lists read, binary files refused."""

import pytest

from i3d_keras.utils import textfiles


def test_utf8_text_with_or_without_a_byte_order_mark(tmp_path):
    for data in (b"a\nb\n", b"\xef\xbb\xbfa\nb\n"):
        path = tmp_path / "list.txt"
        path.write_bytes(data)
        assert textfiles.read_text_file(path).splitlines() == ["a", "b"]


@pytest.mark.parametrize("data", [b"PK\x03\x04\x00\x00", b"caf\xe9\n", b"a\x00b\n"],
                         ids=["zip", "latin-1", "nul"])
def test_binary_or_other_encodings_are_refused_with_their_size(tmp_path, data):
    path = tmp_path / "model.txt"
    path.write_bytes(data)
    with pytest.raises(textfiles.NotTextError, match="model.txt") as caught:
        textfiles.read_text_file(path)
    assert caught.value.size == len(data) and isinstance(caught.value, ValueError)


def test_a_missing_file_is_an_os_error(tmp_path):
    with pytest.raises(FileNotFoundError):
        textfiles.read_text_file(tmp_path / "missing.txt")
