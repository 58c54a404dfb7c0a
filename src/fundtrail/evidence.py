"""Hashes of evidence files and grant agreements, as the escrow stores them.

The escrow keeps only a 32-byte keccak256 hash of each document, so anyone holding the document
can check it against the chain, and the document itself stays off-chain.
"""

import logging
import re
from pathlib import Path

from Crypto.Hash import keccak

from fundtrail.errors import FileError, SpecError

logger = logging.getLogger(__name__)

CHUNK_SIZE = 1024 * 1024
"""Bytes read at a time, so that large evidence such as video does not fill the memory."""

_HASH = re.compile(r"0x[0-9a-fA-F]{64}")
_HEX_WITHOUT_PREFIX = re.compile(r"[0-9a-fA-F]{64}")


def hash_file(path: str | Path) -> bytes:
    """Return the keccak256 hash of a file's bytes, reading it in chunks.

    Raise `FileError` if the file is missing, unreadable or empty. An empty file is rejected
    because its hash proves nothing about the work done.
    """
    path = Path(path)
    digest = keccak.new(digest_bits=256)
    size = 0
    try:
        with path.open("rb") as file:
            while chunk := file.read(CHUNK_SIZE):
                digest.update(chunk)
                size += len(chunk)
    except FileNotFoundError as error:
        raise FileError(path, "file not found", "Check the path and the current folder.") from error
    except IsADirectoryError as error:
        raise FileError(
            path,
            "is a folder, not a file",
            "Pass the path of a single file, or pack the folder into an archive first.",
        ) from error
    except OSError as error:
        raise FileError(
            path,
            f"cannot be read ({error.strerror or error})",
            "Check that the file exists and that you may read it.",
        ) from error

    if size == 0:
        raise FileError(
            path,
            "the file is empty",
            "Pass the finished document, because an empty file proves nothing.",
        )
    result = digest.digest()
    logger.debug("Hashed %s (%d bytes): %s", path, size, to_hex(result))
    return result


def parse_hash(text: str, field: str = "evidence hash") -> bytes:
    """Convert "0x" followed by 64 hex digits into 32 bytes.

    Raise `SpecError` for anything else and for the zero hash, which the escrow rejects because
    it marks a milestone without evidence.
    """
    if not isinstance(text, str):
        raise SpecError(
            field,
            text,
            "a hash must be text",
            "Write it as 0x followed by 64 hex digits, in quotes in YAML files.",
        )
    stripped = text.strip()
    if _HEX_WITHOUT_PREFIX.fullmatch(stripped):
        raise SpecError(field, text, "the 0x prefix is missing", f"Write it as '0x{stripped}'.")
    if not _HASH.fullmatch(stripped):
        raise SpecError(
            field,
            text,
            "not a 32-byte hash",
            "Write 0x followed by exactly 64 hex digits, as produced by hashing the file.",
        )
    value = bytes.fromhex(stripped[2:])
    if value == bytes(32):
        raise SpecError(
            field,
            text,
            "the zero hash means no evidence",
            "Pass the keccak256 hash of the actual file.",
        )
    return value


def to_hex(value: bytes) -> str:
    """Return `value` as "0x" followed by lowercase hex digits."""
    return "0x" + bytes(value).hex()
