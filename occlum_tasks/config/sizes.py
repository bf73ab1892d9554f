"""Occlum's memory size strings: "256MB", "1GB", "4096B" (units are powers of 1024)."""

import re

UNITS = {"B": 1, "KB": 1 << 10, "MB": 1 << 20, "GB": 1 << 30, "TB": 1 << 40}
# As Occlum: white space around the string and between number and unit is trimmed;
# units are case sensitive ("256mb" and "256M" are refused).
SIZE_RE = re.compile(r"\s*([0-9]+)\s*(B|KB|MB|GB|TB)\s*")
# Occlum keeps sizes in a usize.
MAX_SIZE = (1 << 64) - 1
SIZE_HINT = 'use B, KB, MB, GB or TB (e.g. "256MB")'


def _quote(value):
    return f'"{value}"' if isinstance(value, str) else repr(value)


def parse_size(text):
    """Return the number of bytes of an Occlum size string; ValueError if it is not one."""
    if not isinstance(text, str):
        raise ValueError(f"{_quote(text)} is not a size; write a string and {SIZE_HINT}")
    match = SIZE_RE.fullmatch(text)
    if not match:
        raise ValueError(f"{_quote(text)} is not a size; {SIZE_HINT}")
    value = int(match.group(1)) * UNITS[match.group(2)]
    if value > MAX_SIZE:
        raise ValueError(f"{_quote(text)} is too large; a size must fit in 64 bits")
    return value


def size_or_none(value):
    """Bytes of a well-formed size string, else None (the schema reports the form)."""
    if isinstance(value, str) and SIZE_RE.fullmatch(value):
        try:
            return parse_size(value)
        except ValueError:
            return None
    return None


def format_size(value):
    """The shortest exact size string for a number of bytes: 4194304 -> "4MB"."""
    for unit in ("TB", "GB", "MB", "KB"):
        if value and value % UNITS[unit] == 0:
            return f"{value // UNITS[unit]}{unit}"
    return f"{value}B"
