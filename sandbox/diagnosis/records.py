"""Event files read record by record: TFRecord framing by hand, each record parsed with
tensorboard's own ``Event`` protobuf.

tensorboard's ``EventFileLoader`` checks every record's CRC32C in pure Python when
TensorFlow is not installed, which is most of its time; it also stops silently at a
truncated record. Here both checksums of every record (its length's and its payload's)
are computed in C (google-crc32c, as the sandbox's writer does), and whatever could not
be read is reported with the byte offset where it happened, rather than dropped without
a word. Records stream from a buffered file: memory stays flat whatever its size.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..events import masked_crc

HEADER = struct.Struct("<QI")  # payload length, masked CRC32C of those 8 bytes
FOOTER = struct.Struct("<I")  # masked CRC32C of the payload
READ_BUFFER = 1 << 20
MAX_RECORD = 256 << 20  # no scalar event comes near this; a length above it is damage


@dataclass
class Damage:
    """Where reading a file stopped before its end, and why."""

    records: int  # records read before it
    offset: int  # byte offset of the record that could not be read
    size: int  # the file's size
    reason: str

    def __str__(self) -> str:
        lost = self.size - self.offset
        return (f"read {self.records} records, then {self.reason} at byte {self.offset}; "
                f"the last {lost} bytes ({lost / max(self.size, 1):.0%} of the file) were "
                "skipped")


def events(path: Path, damage: list[Damage]) -> Iterator[Any]:
    """Every ``Event`` in an event file, in order; on damage, a :class:`Damage` is appended
    to ``damage`` and the iteration ends there (a record's length cannot be trusted after
    a bad one, so nothing later can be found reliably).
    """
    from google.protobuf.message import DecodeError
    from tensorboard.compat.proto.event_pb2 import Event

    size = path.stat().st_size
    records = offset = 0
    with open(path, "rb", buffering=READ_BUFFER) as handle:
        while True:
            header = handle.read(HEADER.size)
            if not header:
                return
            if len(header) < HEADER.size:
                damage.append(Damage(records, offset, size, "a truncated record header"))
                return
            length, length_crc = HEADER.unpack(header)
            if masked_crc(header[:8]) != length_crc:
                damage.append(Damage(records, offset, size, "a corrupt record header "
                                     "(its length does not match its checksum)"))
                return
            if length > MAX_RECORD or offset + HEADER.size + length + FOOTER.size > size:
                damage.append(Damage(records, offset, size, "a truncated record (the file "
                                     "ends inside it)"))
                return
            payload = handle.read(length)
            (payload_crc,) = FOOTER.unpack(handle.read(FOOTER.size))
            if masked_crc(payload) != payload_crc:
                damage.append(Damage(records, offset, size, "a corrupt record (its payload "
                                     "does not match its checksum)"))
                return
            try:
                event = Event.FromString(payload)
            except DecodeError:
                damage.append(Damage(records, offset, size, "a record that is not an event "
                                     "(corrupt payload)"))
                return
            records += 1
            offset += HEADER.size + length + FOOTER.size
            yield event
