"""Occlum.json: read (JSON with // and /* */ comments), validate, fill in defaults.

    loaded = load_config(Path("Occlum.json"))
    loaded.resolved    # defaults filled, sizes in bytes, unknown keys dropped
    loaded.warnings    # ['Occlum.json:7: foo: unknown key, ignored', ...]

load_config raises ConfigError listing every problem, one line each:
`<file>:<line>: <json path>: <what is wrong and what is expected>`.
"""

import os
from dataclasses import dataclass, field
from pathlib import Path

from ..paths import TEMPLATES_DIR
from ..errors import ConfigError
from . import jsonc
from .checks import check_semantics
from .defaults import DEFAULTS, resolve
from .report import Findings
from .sizes import format_size, parse_size
from .validate import check_structure, schema_path

__all__ = [
    "ConfigError", "DEFAULTS", "LoadedConfig", "format_size", "load_config", "parse_size",
    "render_template", "schema_path", "template_path",
]


@dataclass
class LoadedConfig:
    path: Path                # the file as passed
    name: str                 # how messages name it
    resolved: dict            # see defaults.resolve
    warnings: list = field(default_factory=list)
    document: jsonc.Document = None  # the parsed file, for lines of values

    def line_of(self, json_path):
        """The line of a value in the file, e.g. line_of(("mount", 1, "source"))."""
        return self.document.line_of(json_path)


def display_name(path):
    """The file's name as the user typed it, or just its name when it is in the cwd."""
    path = Path(path)
    try:
        if Path(os.path.abspath(path)).parent == Path(os.path.abspath(os.getcwd())):
            return path.name
    except OSError:
        pass
    return str(path)


def _fail(problems, warnings=()):
    """A ConfigError that also carries the warnings found (none before parsing)."""
    error = ConfigError(problems)
    error.warnings = list(warnings)
    return error


def _read_text(path, name):
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise _fail([f"{name}: no such file"]) from None
    except IsADirectoryError:
        raise _fail([f"{name}: is a folder, not a file"]) from None
    except OSError as e:
        raise _fail([f"{name}: cannot read it: {e.strerror or e}"]) from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        raise _fail([f"{name}:{line}: not UTF-8 text (byte 0x{data[e.start]:02x})"]) from None


def load_config(path):
    """Read, check and resolve the Occlum.json at path; the instance folder is path.parent.

    Raises ConfigError with every problem found (warnings are on its .warnings too).
    """
    path = Path(path)
    name = display_name(path)
    text = _read_text(path, name)
    try:
        document = jsonc.parse(text)
    except jsonc.JsonSyntaxError as e:
        raise _fail([f"{name}:{e.line}: syntax error: {e.message}"]) from None

    findings = Findings(document)
    for member, line, first_line in document.duplicates:
        findings.error_at_line(line, member, f"given twice (first on line {first_line})")
    check_structure(document, findings)
    check_semantics(document.value, findings, path.parent)

    warnings = Findings.lines(findings.warnings, name)
    if findings.errors:
        raise _fail(Findings.lines(findings.errors, name), warnings)
    return LoadedConfig(path=path, name=name, resolved=resolve(document.value),
                        warnings=warnings, document=document)


def template_path():
    """The Jinja2 template of the default Occlum.json."""
    return TEMPLATES_DIR / "Occlum.json.j2"


def render_template(plain=False):
    """The default Occlum.json text; plain=True leaves out the // notes (for jq users)."""
    import jinja2  # only `occlum init` needs it

    source = template_path().read_text(encoding="utf-8")
    env = jinja2.Environment(keep_trailing_newline=True, undefined=jinja2.StrictUndefined,
                             autoescape=False)
    return env.from_string(source).render(plain=plain)
