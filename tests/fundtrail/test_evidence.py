import os
import tempfile
from pathlib import Path

import pytest
from eth_utils import keccak
from hypothesis import given
from hypothesis import strategies as st

from fundtrail import evidence
from fundtrail.errors import FileError, SpecError
from fundtrail.evidence import hash_file, parse_hash, to_hex

# keccak256("abc"), the published test vector of the Keccak team.
ABC_HASH = "0x4e03657aea45a94fc7d47ba826c8d667c0d1e6e33a64a036ec44f58fa12d6c45"


def test_hash_file_matches_known_vector(tmp_path):
    path = tmp_path / "abc.txt"
    path.write_bytes(b"abc")

    assert to_hex(hash_file(path)) == ABC_HASH


def test_hash_file_accepts_text_path(tmp_path):
    path = tmp_path / "abc.txt"
    path.write_bytes(b"abc")

    assert to_hex(hash_file(str(path))) == ABC_HASH


def test_hash_file_reads_in_chunks(tmp_path, monkeypatch):
    data = os.urandom(10_000)
    path = tmp_path / "video.bin"
    path.write_bytes(data)
    monkeypatch.setattr(evidence, "CHUNK_SIZE", 7)

    assert hash_file(path) == keccak(data)


def test_hash_file_rejects_missing_file(tmp_path):
    path = tmp_path / "missing.pdf"

    with pytest.raises(FileError) as raised:
        hash_file(path)

    assert raised.value.path == path
    assert str(raised.value) == f"{path}: file not found. Check the path and the current folder."


def test_hash_file_rejects_empty_file(tmp_path):
    path = tmp_path / "empty.pdf"
    path.write_bytes(b"")

    with pytest.raises(FileError) as raised:
        hash_file(path)

    assert str(raised.value) == (
        f"{path}: the file is empty. Pass the finished document, because an empty file proves "
        "nothing."
    )


def test_hash_file_rejects_folder(tmp_path):
    with pytest.raises(FileError) as raised:
        hash_file(tmp_path)

    assert raised.value.problem == "is a folder, not a file"


def test_hash_file_rejects_unreadable_file(tmp_path, monkeypatch):
    path = tmp_path / "secret.pdf"
    path.write_bytes(b"x")

    # Denied by a stub, because file modes do not stop root, which runs some test machines.
    def deny(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(Path, "open", deny)

    with pytest.raises(FileError) as raised:
        hash_file(path)

    assert raised.value.problem == "cannot be read (Permission denied)"


@given(st.binary(min_size=1, max_size=4096))
def test_hash_file_equals_keccak_of_content(data):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "evidence.bin"
        path.write_bytes(data)

        first = hash_file(path)
        second = hash_file(path)

    assert first == keccak(data)
    assert second == first
    assert len(first) == 32


@given(st.binary(min_size=32, max_size=32).filter(any))
def test_parse_hash_reads_to_hex_output(value):
    assert parse_hash(to_hex(value)) == value
    assert parse_hash(to_hex(value).upper().replace("0X", "0x")) == value


def test_to_hex_is_lowercase():
    assert to_hex(bytes.fromhex("ABCDEF")) == "0xabcdef"


def test_parse_hash_strips_spaces():
    assert to_hex(parse_hash(f"  {ABC_HASH}\n")) == ABC_HASH


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (ABC_HASH[2:], "the 0x prefix is missing"),
        (ABC_HASH[:-1], "not a 32-byte hash"),
        (ABC_HASH + "00", "not a 32-byte hash"),
        ("0x" + "g" * 64, "not a 32-byte hash"),
        ("", "not a 32-byte hash"),
        ("0x" + "0" * 64, "the zero hash means no evidence"),
        (0x1234, "a hash must be text"),
        (None, "a hash must be text"),
    ],
)
def test_parse_hash_rejects_invalid_text(text, problem):
    with pytest.raises(SpecError) as raised:
        parse_hash(text, "terms.hash")

    assert raised.value.field == "terms.hash"
    assert raised.value.value == text
    assert raised.value.problem == problem


def test_parse_hash_suggests_prefix():
    with pytest.raises(SpecError) as raised:
        parse_hash(ABC_HASH[2:])

    assert raised.value.field == "evidence hash"
    assert raised.value.fix == f"Write it as '{ABC_HASH}'."
