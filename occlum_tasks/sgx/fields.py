"""Fixed-layout binary structures written as tables of fields.

Every SGX structure this package reads or writes (SIGSTRUCT, TCS, the measurement
records, the config page) is declared as a table of ``(name, offset, struct code)``
rows. The table checks at import time that the rows tile the structure exactly, so an
offset typo fails loudly instead of producing a wrong measurement.

Integers are little-endian, as on x86. Byte strings (``"16s"``) are zero-padded when
packed. Fields whose name starts with ``reserved`` are always packed as zeros.
"""
from __future__ import annotations

import struct
from typing import Iterable, Mapping

__all__ = ["Field", "FieldTable", "int_to_le", "le_to_int"]


class Field:
    """One row of a table: where a field lives and how it is encoded."""

    __slots__ = ("name", "offset", "code", "size", "_struct")

    def __init__(self, name: str, offset: int, code: str):
        self.name = name
        self.offset = offset
        self.code = code
        self._struct = struct.Struct("<" + code)
        self.size = self._struct.size

    @property
    def end(self) -> int:
        return self.offset + self.size

    @property
    def span(self) -> slice:
        return slice(self.offset, self.end)

    @property
    def is_bytes(self) -> bool:
        return self.code.endswith("s")

    def __repr__(self) -> str:
        return f"Field({self.name!r}, {self.offset}, {self.code!r})"


class FieldTable:
    """An ordered table of fields covering ``size`` bytes without gap or overlap."""

    def __init__(self, name: str, size: int, rows: Iterable[tuple[str, int, str]]):
        self.name = name
        self.size = size
        self.fields = [Field(*row) for row in rows]
        self.by_name = {f.name: f for f in self.fields}
        if len(self.by_name) != len(self.fields):
            raise AssertionError(f"{name}: duplicate field names")
        at = 0
        for f in self.fields:
            if f.offset != at:
                raise AssertionError(f"{name}.{f.name} at {f.offset}, expected {at}")
            at = f.end
        if at != size:
            raise AssertionError(f"{name}: fields cover {at} bytes, expected {size}")

    def __getitem__(self, name: str) -> Field:
        return self.by_name[name]

    def __iter__(self):
        return iter(self.fields)

    def pack(self, values: Mapping[str, object]) -> bytes:
        """Encode ``values``; absent fields (and every reserved field) are zero."""
        unknown = set(values) - set(self.by_name)
        if unknown:
            raise KeyError(f"{self.name}: unknown fields {sorted(unknown)}")
        out = bytearray(self.size)
        for f in self.fields:
            if f.name.startswith("reserved") or f.name not in values:
                continue
            value = values[f.name]
            if f.is_bytes and len(value) > f.size:
                raise ValueError(f"{self.name}.{f.name}: {len(value)} bytes > {f.size}")
            try:
                f._struct.pack_into(out, f.offset, value)
            except struct.error as exc:
                raise ValueError(f"{self.name}.{f.name}: {exc}") from None
        return bytes(out)

    def unpack(self, blob: bytes) -> dict:
        """Decode every field of ``blob`` (exactly ``size`` bytes) into a dict."""
        if len(blob) != self.size:
            raise ValueError(f"{self.name}: {len(blob)} bytes, expected {self.size}")
        return {f.name: f._struct.unpack_from(blob, f.offset)[0] for f in self.fields}


def int_to_le(value: int, size: int) -> bytes:
    """A non-negative integer as ``size`` little-endian bytes (SGX stores RSA numbers so)."""
    return value.to_bytes(size, "little")


def le_to_int(data: bytes) -> int:
    return int.from_bytes(data, "little")
