"""Collecting problems as one-line messages: `<file>:<line>: <json path>: <text>`."""

import json
import re

_PLAIN_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


def format_path(path):
    """('mount', 2, 'options') -> 'mount[2].options'; odd keys are quoted: a["b c"]."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        elif _PLAIN_KEY.match(part):
            out += f".{part}" if out else part
        else:
            out += f"[{json.dumps(part, ensure_ascii=False)}]"
    return out or "top level"


def show(value, limit=60):
    """A value as the user wrote it in JSON, shortened; objects and lists abbreviated."""
    if isinstance(value, dict):
        return "{...}" if value else "{}"
    if isinstance(value, list):
        return "[...]" if value else "[]"
    text = json.dumps(value, ensure_ascii=False)
    if len(text) > limit:
        text = text[:limit - 4] + '..."' if text.startswith('"') else text[:limit - 3] + "..."
    return text


def normalise_path(path):
    """An absolute path with '//', '.' and a trailing '/' removed: '/host/./a/' -> '/host/a'."""
    parts = [p for p in path.split("/") if p not in ("", ".")]
    return "/" + "/".join(parts)


class Findings:
    """Errors and warnings about one parsed document, each tied to a JSON path and line."""

    def __init__(self, document):
        self.document = document
        self.errors = []
        self.warnings = []

    def _entry(self, path, text, at_key):
        doc = self.document
        line = doc.key_line_of(path) if at_key else doc.line_of(path)
        return (line, f"{format_path(path)}: {text}")

    def error(self, path, text, at_key=False):
        self.errors.append(self._entry(path, text, at_key))

    def error_at_line(self, line, path, text):
        self.errors.append((line, f"{format_path(path)}: {text}"))

    def warn(self, path, text, at_key=False):
        self.warnings.append(self._entry(path, text, at_key))

    @staticmethod
    def lines(entries, name):
        """Format entries for the file called name: sorted by line, duplicates dropped."""
        seen = set()
        out = []
        for line, text in sorted(entries, key=lambda entry: entry[0]):
            message = f"{name}:{line}: {text}"
            if message not in seen:
                seen.add(message)
                out.append(message)
        return out
