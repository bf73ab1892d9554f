"""Structural validation with jsonschema, its errors turned into Occlum-worded lines.

jsonschema finds what is wrong; this module only says it in the user's terms, at the
line of the value concerned. The schema's own `x-expected` and `x-why` keys hold the
wording for its definitions (sizes, paths, MACs...), so the words live beside the rule.
jsonschema is imported here and only when a configuration is checked: `occlum run`
reads the resolved configuration and must not pay for this import.
"""

import difflib
import functools
import json

from ..paths import SCHEMAS_DIR
from .report import show

_TYPE_WORDS = {
    "object": "an object",
    "array": "a list",
    "string": "a string",
    "integer": "an integer",
    "number": "a number",
    "boolean": "true or false",
    "null": "null",
}

# The keywords whose errors are worded below; tests check the schema uses no others.
HANDLED_KEYWORDS = {
    "type", "pattern", "enum", "minimum", "maximum", "required", "additionalProperties",
    "minLength", "const",
}


def schema_path():
    """Where the Occlum.json schema is."""
    return SCHEMAS_DIR / "occlum.schema.json"


@functools.lru_cache(maxsize=1)
def load_schema():
    with open(schema_path(), encoding="utf-8") as f:
        return json.load(f)


def _expected(schema):
    """The schema's own words for what a value should be, if it has them."""
    return schema.get("x-expected") if isinstance(schema, dict) else None


def _enum_words(values):
    return ", ".join(v if isinstance(v, str) else json.dumps(v) for v in values)


def _range_words(schema):
    low, high = schema.get("minimum"), schema.get("maximum")
    if low is not None and high is not None:
        return f"expected {low} to {high}"
    if low is not None:
        return f"expected at least {low}"
    return f"expected at most {high}"


def check_structure(document, findings, schema=None):
    """Validate document.value against the schema; record errors and unknown-key warnings."""
    import jsonschema  # deliberately lazy, see the module docstring

    schema = load_schema() if schema is None else schema
    validator = jsonschema.Draft202012Validator(schema)
    for error in validator.iter_errors(document.value):
        _record(error, findings)


def _record(error, findings):
    path = tuple(error.absolute_path)
    value = error.instance
    schema = error.schema
    keyword = error.validator
    expected = _expected(schema)

    if keyword == "additionalProperties":
        known = list(schema.get("properties", {}))
        for key in value:
            if key in known:
                continue
            hint = difflib.get_close_matches(key, known, n=1)
            suggestion = f' (did you mean "{hint[0]}"?)' if hint else ""
            findings.warn(path + (key,), f"unknown key, ignored{suggestion}", at_key=True)
        return

    if keyword == "required":
        why = schema.get("x-why")
        for name in error.validator_value:
            if isinstance(value, dict) and name not in value:
                reason = f" ({why})" if why else ""
                findings.error(path, f'missing required field "{name}"{reason}')
        return

    if keyword == "type":
        findings.error(path, f"{show(value)} is not {expected or _TYPE_WORDS.get(error.validator_value, error.validator_value)}")
    elif keyword == "pattern":
        findings.error(path, f"{show(value)} is not {expected or 'in the expected form'}")
    elif keyword == "enum":
        findings.error(path, f"{show(value)} is not one of {_enum_words(error.validator_value)}")
    elif keyword == "const":
        findings.error(path, f"{show(value)} must be {show(error.validator_value)}")
    elif keyword in ("minimum", "maximum"):
        # x-why explains a bound that is a limit of occlum-py (a maximum)
        why = schema.get("x-why") if keyword == "maximum" else None
        findings.error(path, f"{show(value)} is out of range; {_range_words(schema)}"
                             + (f" ({why})" if why else ""))
    elif keyword == "minLength":
        findings.error(path, f"{show(value)} is empty; expected {expected or 'some text'}")
    else:
        # A keyword added to the schema without wording here still gives a usable line.
        findings.error(path, f"{show(value)} is not valid here ({keyword})")
