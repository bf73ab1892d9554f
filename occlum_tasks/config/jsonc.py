"""JSON with // and /* */ comments, keeping the line of every key and value.

The stdlib json module reports no positions, and an Occlum.json error must name its
line, so this small recursive-descent reader records, for each JSON path (a tuple of
keys and list indices), the line where the value starts and, for object members, the
line of the key. Everything else is strict JSON: trailing commas, single quotes, bare
words, NaN and leading zeros are syntax errors, as Occlum's own reader rejects them.
"""

import bisect
import re

_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?", re.ASCII)
# The run of characters a mistyped number or bare word is made of, to quote it back.
_WORD = re.compile(r"[A-Za-z0-9_.+\-]+")
_ESCAPES = {'"': '"', "\\": "\\", "/": "/", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t"}
_WHITESPACE = " \t\n\r"
# Deep enough for any real configuration; stops a hostile file before RecursionError.
MAX_DEPTH = 256


class JsonSyntaxError(ValueError):
    """A syntax error at a 1-based line and column."""

    def __init__(self, line, column, message):
        self.line = line
        self.column = column
        self.message = message
        super().__init__(f"line {line}: {message}")


class Document:
    """A parsed file: the value, where each part of it is, and duplicated keys.

    value_lines[path] is the line where the value at path starts; key_lines[path] the
    line of the key naming it (objects' members only). duplicates lists
    (path, line, first_line) for every key given twice in one object.
    """

    def __init__(self, value, value_lines, key_lines, duplicates):
        self.value = value
        self.value_lines = value_lines
        self.key_lines = key_lines
        self.duplicates = duplicates

    def line_of(self, path):
        """The line of the value at path, or of its nearest enclosing value."""
        path = tuple(path)
        while path not in self.value_lines and path:
            path = path[:-1]
        return self.value_lines.get(path, 1)

    def key_line_of(self, path):
        """The line of the key naming path (falls back to the value's line)."""
        path = tuple(path)
        return self.key_lines.get(path) or self.line_of(path)


def parse(text):
    """Parse text into a Document; raise JsonSyntaxError for the first syntax error."""
    return _Parser(text).parse_document()


def _describe(ch):
    if ch == "":
        return "end of file"
    if ch in "\n\r":
        return "end of line"
    if ch.isprintable() and not ch.isspace():
        return f"'{ch}'"
    return f"character U+{ord(ch):04X}"


class _Parser:
    def __init__(self, text):
        self.text = text
        self.pos = 0
        # Offsets just past each newline, to turn an offset into a line by bisection.
        self.line_starts = [0] + [m.end() for m in re.finditer("\n", text)]
        self.value_lines = {}
        self.key_lines = {}
        self.duplicates = []

    # -- positions and errors -------------------------------------------------

    def line_at(self, offset):
        return bisect.bisect_right(self.line_starts, offset)

    def error(self, message, offset=None):
        offset = self.pos if offset is None else offset
        line = self.line_at(offset)
        column = offset - self.line_starts[line - 1] + 1
        return JsonSyntaxError(line, column, message)

    def peek(self):
        return self.text[self.pos] if self.pos < len(self.text) else ""

    # -- white space and comments ---------------------------------------------

    def skip_blank(self):
        text = self.text
        while self.pos < len(text):
            ch = text[self.pos]
            if ch in _WHITESPACE:
                self.pos += 1
            elif text.startswith("//", self.pos):
                end = text.find("\n", self.pos)
                self.pos = len(text) if end < 0 else end + 1
            elif text.startswith("/*", self.pos):
                end = text.find("*/", self.pos + 2)
                if end < 0:
                    raise self.error("unterminated /* comment (no closing */)")
                self.pos = end + 2
            elif ch == "/":
                raise self.error("a lone '/'; comments start with // or /*")
            else:
                return

    # -- values ---------------------------------------------------------------

    def parse_document(self):
        if self.text.startswith("\ufeff"):
            self.pos = 1  # a UTF-8 byte order mark some editors write
        self.skip_blank()
        if self.pos >= len(self.text):
            raise self.error("the file is empty; expected a JSON object")
        value = self.parse_value((), 0)
        self.skip_blank()
        if self.pos < len(self.text):
            raise self.error(f"unexpected {_describe(self.peek())} after the end of the top-level value")
        return Document(value, self.value_lines, self.key_lines, self.duplicates)

    def parse_value(self, path, depth):
        if depth > MAX_DEPTH:
            raise self.error(f"nested more than {MAX_DEPTH} levels deep")
        self.value_lines[path] = self.line_at(self.pos)
        ch = self.peek()
        if ch == "{":
            return self.parse_object(path, depth)
        if ch == "[":
            return self.parse_array(path, depth)
        if ch == '"':
            return self.parse_string()
        if ch == "'":
            raise self.error("strings need double quotes, not single quotes")
        if ch == "-" or ch.isdigit():
            return self.parse_number()
        for word, value in (("true", True), ("false", False), ("null", None)):
            if self.text.startswith(word, self.pos):
                end = self.pos + len(word)
                if not _WORD.match(self.text, end):
                    self.pos = end
                    return value
        if ch == "":
            raise self.error("unexpected end of file; expected a value")
        word = _WORD.match(self.text, self.pos)
        if word:
            raise self.error(f"unexpected word '{word.group()}'; a value is a string in double "
                             "quotes, a number, an object, a list, true, false or null")
        raise self.error(f"unexpected {_describe(ch)}; expected a value")

    def parse_number(self):
        start = self.pos
        match = _NUMBER.match(self.text, start)
        word = _WORD.match(self.text, start)
        if not match or (word and word.end() > match.end()):
            shown = word.group() if word else self.text[start:start + 1]
            raise self.error(f"invalid number '{shown}'")
        self.pos = match.end()
        literal = match.group()
        if any(c in literal for c in ".eE"):
            return float(literal)
        return int(literal)

    def parse_string(self):
        start = self.pos
        self.pos += 1  # the opening quote
        text = self.text
        parts = []
        while True:
            if self.pos >= len(text):
                raise self.error("unterminated string (no closing \")", start)
            ch = text[self.pos]
            if ch == '"':
                self.pos += 1
                return "".join(parts)
            if ch == "\n":
                raise self.error("unterminated string (missing closing \" before the end of line)", start)
            if ch < " ":
                raise self.error(f"{_describe(ch)} inside a string; write it as an escape such as \\t")
            if ch != "\\":
                parts.append(ch)
                self.pos += 1
                continue
            escape = text[self.pos + 1:self.pos + 2]
            if escape in _ESCAPES:
                parts.append(_ESCAPES[escape])
                self.pos += 2
            elif escape == "u":
                parts.append(self.parse_unicode_escape())
            else:
                raise self.error(f"invalid escape '\\{escape}' in a string")

    def parse_unicode_escape(self):
        code = self.read_hex4()
        # A UTF-16 surrogate pair is two escapes that make one character.
        if 0xD800 <= code < 0xDC00 and self.text.startswith("\\u", self.pos):
            saved = self.pos
            low = self.read_hex4()
            if 0xDC00 <= low < 0xE000:
                return chr(0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00))
            self.pos = saved
        return chr(code)

    def read_hex4(self):
        digits = self.text[self.pos + 2:self.pos + 6]
        if len(digits) != 4 or not re.fullmatch(r"[0-9a-fA-F]{4}", digits):
            raise self.error("invalid \\u escape; expected four hex digits")
        self.pos += 6
        return int(digits, 16)

    def parse_object(self, path, depth):
        open_at = self.pos
        self.pos += 1
        result = {}
        seen = {}
        self.skip_blank()
        if self.peek() == "}":
            self.pos += 1
            return result
        while True:
            self.skip_blank()
            key_at = self.pos
            ch = self.peek()
            if ch != '"':
                if ch == "":
                    raise self.unclosed("{", "}", open_at)
                if ch == "'":
                    raise self.error("keys need double quotes, not single quotes")
                word = _WORD.match(self.text, self.pos)
                found = f"'{word.group()}'" if word else _describe(ch)
                raise self.error(f"expected a key in double quotes, found {found}")
            key = self.parse_string()
            member = path + (key,)
            key_line = self.line_at(key_at)
            if key in seen:
                self.duplicates.append((member, key_line, seen[key]))
            else:
                seen[key] = key_line
            self.key_lines[member] = key_line
            self.skip_blank()
            if self.peek() != ":":
                raise self.error(f"expected ':' after the key \"{key}\", found {_describe(self.peek())}")
            self.pos += 1
            self.skip_blank()
            result[key] = self.parse_value(member, depth + 1)
            value_end = self.pos
            self.skip_blank()
            ch = self.peek()
            if ch == "}":
                self.pos += 1
                return result
            if ch == ",":
                comma_at = self.pos
                self.pos += 1
                self.skip_blank()
                if self.peek() == "}":
                    raise self.error("trailing comma before '}' (JSON allows none)", comma_at)
                continue
            if ch == "":
                raise self.unclosed("{", "}", open_at)
            if ch == '"':
                raise self.error("missing ',' after this member", value_end)
            raise self.error(f"expected ',' or '}}' after a member, found {_describe(ch)}")

    def parse_array(self, path, depth):
        open_at = self.pos
        self.pos += 1
        result = []
        self.skip_blank()
        if self.peek() == "]":
            self.pos += 1
            return result
        while True:
            self.skip_blank()
            if self.peek() == "":
                raise self.unclosed("[", "]", open_at)
            result.append(self.parse_value(path + (len(result),), depth + 1))
            value_end = self.pos
            self.skip_blank()
            ch = self.peek()
            if ch == "]":
                self.pos += 1
                return result
            if ch == ",":
                comma_at = self.pos
                self.pos += 1
                self.skip_blank()
                if self.peek() == "]":
                    raise self.error("trailing comma before ']' (JSON allows none)", comma_at)
                continue
            if ch == "":
                raise self.unclosed("[", "]", open_at)
            if ch in '"{[' or ch.isdigit():
                raise self.error("missing ',' after this item", value_end)
            raise self.error(f"expected ',' or ']' after an item, found {_describe(ch)}")

    def unclosed(self, opener, closer, open_at):
        return self.error(f"unexpected end of file; the '{opener}' opened on line "
                          f"{self.line_at(open_at)} is never closed with '{closer}'")
