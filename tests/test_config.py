"""The Occlum.json reader: template, corpus of bad files, sizes, resolved shape."""

import json
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest

from occlum_tasks import errors
from occlum_tasks.config import (
    DEFAULTS, ConfigError, format_size, load_config, parse_size, render_template, schema_path,
)
from occlum_tasks.config import jsonc
from occlum_tasks.config.validate import HANDLED_KEYWORDS, load_schema

CORPUS = Path(__file__).parent / "config_corpus"
CASES = sorted(p.stem for p in CORPUS.glob("*.json"))


def write_instance(folder, text):
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "Occlum.json"
    path.write_text(text, encoding="utf-8")
    return path


def outcome(path):
    """(errors, warnings) of loading path."""
    try:
        loaded = load_config(path)
    except ConfigError as e:
        return e.problems, e.warnings
    return [], loaded.warnings


# -- the default Occlum.json --------------------------------------------------

def test_template_renders_and_validates(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    text = render_template()
    assert "//" in text  # the notes are there
    loaded = load_config(write_instance(tmp_path, text))
    assert loaded.warnings == []
    assert loaded.resolved["resource_limits"]["user_space_size"] == 300 * 2**20


def test_template_needs_no_variables_even_strictly():
    """`occlum init` renders it with StrictUndefined and no variables."""
    import jinja2

    from occlum_tasks.config import template_path

    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(template_path().parent)),
                             keep_trailing_newline=True, undefined=jinja2.StrictUndefined)
    text = env.get_template(template_path().name).render()
    assert text == render_template()
    assert jsonc.parse(text).value == DEFAULTS


def test_plain_template_is_strict_json_with_the_same_values():
    plain = json.loads(render_template(plain=True))
    assert "//" not in render_template(plain=True)
    assert jsonc.parse(render_template()).value == plain
    jsonschema.validate(plain, load_schema())


def test_defaults_match_the_template(tmp_path):
    """An empty Occlum.json resolves exactly as the default one: one set of defaults."""
    from_template = load_config(write_instance(tmp_path / "a", render_template())).resolved
    from_nothing = load_config(write_instance(tmp_path / "b", "{}")).resolved
    assert from_nothing == from_template
    assert jsonc.parse(render_template()).value == DEFAULTS


# -- the corpus of bad files -------------------------------------------------

def test_corpus_is_large_and_complete():
    assert len(CASES) >= 20
    for case in CASES:
        assert (CORPUS / f"{case}.expected").is_file(), case


@pytest.mark.parametrize("case", CASES)
def test_corpus(case, tmp_path, monkeypatch):
    instance = tmp_path / "instance"
    path = write_instance(instance, (CORPUS / f"{case}.json").read_text(encoding="utf-8"))
    monkeypatch.chdir(instance)
    expected = (CORPUS / f"{case}.expected").read_text(encoding="utf-8").splitlines()
    expected_errors = [line for line in expected if not line.startswith("warning: ")]
    expected_warnings = [line[len("warning: "):] for line in expected if line.startswith("warning: ")]
    problems, warnings = outcome(Path("Occlum.json"))
    assert problems == expected_errors
    assert warnings == expected_warnings


def test_several_errors_come_together(tmp_path, monkeypatch):
    monkeypatch.chdir(CORPUS)
    with pytest.raises(ConfigError) as caught:
        load_config(Path("several_errors.json"))
    assert len(caught.value.problems) == 7
    assert str(caught.value).count("\n") == 6  # one line each, nothing else
    assert all(line.startswith("several_errors.json:") for line in caught.value.problems)


# -- files, names and lines --------------------------------------------------

def test_config_error_is_the_projects(tmp_path):
    assert ConfigError is errors.ConfigError
    with pytest.raises(errors.OcclumError):
        load_config(tmp_path / "Occlum.json")


def test_missing_file_is_one_line(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError) as caught:
        load_config(Path("Occlum.json"))
    assert caught.value.problems == ["Occlum.json: no such file"]
    with pytest.raises(ConfigError) as caught:
        load_config(Path("inst") / "Occlum.json")
    assert caught.value.problems == ["inst/Occlum.json: no such file"]


def test_file_is_named_as_given(tmp_path, monkeypatch):
    path = write_instance(tmp_path / "inst", '{\n  "feature": {"amx": 7}\n}\n')
    monkeypatch.chdir(tmp_path)
    assert outcome(Path("inst/Occlum.json"))[0] == ["inst/Occlum.json:2: feature.amx: 7 is not one of 0, 1, 2"]
    assert outcome(path)[0] == [f"{path}:2: feature.amx: 7 is not one of 0, 1, 2"]
    monkeypatch.chdir(tmp_path / "inst")
    assert outcome(path)[0] == ["Occlum.json:2: feature.amx: 7 is not one of 0, 1, 2"]


def test_folder_and_non_utf8(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "Occlum.json").mkdir()
    assert outcome(Path("Occlum.json"))[0] == ["Occlum.json: is a folder, not a file"]
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "Occlum.json").write_bytes(b'{\n "a": "\xff"\n}')
    assert outcome(Path("x/Occlum.json"))[0] == ["x/Occlum.json:2: not UTF-8 text (byte 0xff)"]


def test_hostfs_source_is_relative_to_the_instance_not_the_cwd(tmp_path, monkeypatch):
    instance = tmp_path / "inst"
    (instance / "data").mkdir(parents=True)
    config = json.loads(render_template(plain=True))
    config["mount"].append({"target": "/data", "type": "hostfs", "source": "./data"})
    path = write_instance(instance, json.dumps(config))
    monkeypatch.chdir(tmp_path)  # ./data does not exist here
    loaded = load_config(path)
    assert loaded.resolved["mount"][-1]["source"] == "./data"
    (instance / "data").rmdir()
    assert "does not exist" in outcome(path)[0][0]


def test_line_of_values(tmp_path):
    text = '{\n  "process": {\n    "default_heap_size":\n      "64MB"\n  }\n}\n'
    loaded = load_config(write_instance(tmp_path, text))
    assert loaded.line_of(("process",)) == 2
    assert loaded.line_of(("process", "default_heap_size")) == 4
    assert loaded.document.key_line_of(("process", "default_heap_size")) == 3
    assert loaded.line_of(("mount", 0)) == 1  # absent: the nearest enclosing value


# -- the reader of JSON with comments ----------------------------------------

def test_comments_are_not_read_inside_strings():
    doc = jsonc.parse('// head\n{"a": "x//y", /* c */ "b": ["/*", "*/"] /* tail */}\n// end')
    assert doc.value == {"a": "x//y", "b": ["/*", "*/"]}


def test_escapes_and_numbers():
    doc = jsonc.parse(r'{"s": "a\"b\\c\u00e9\ud83d\ude00\n", "n": [-1, 0, 2.5, 1e3]}')
    assert doc.value == {"s": 'a"b\\c\u00e9\U0001F600\n', "n": [-1, 0, 2.5, 1000.0]}
    assert jsonc.parse("\ufeff{}").value == {}


@pytest.mark.parametrize("text, line, message", [
    ('{"a": [1, 2,]}', 1, "trailing comma before ']' (JSON allows none)"),
    ('{\n"a": 1,\n}', 2, "trailing comma before '}' (JSON allows none)"),
    ('{"a": 01}', 1, "invalid number '01'"),
    ('{"a": NaN}', 1, "unexpected word 'NaN'"),
    ('{"a": "x}', 1, 'unterminated string (no closing ")'),
    ('{"a": "\\q"}', 1, "invalid escape '\\q' in a string"),
    ('{"a": 1} /', 1, "a lone '/'; comments start with // or /*"),
    ('{"a": 1}\n{"b": 2}', 2, "unexpected '{' after the end of the top-level value"),
    ('  \n // nothing\n', 3, "the file is empty; expected a JSON object"),
    ('[' * 300, 1, "nested more than 256 levels deep"),
])
def test_syntax_errors(text, line, message):
    with pytest.raises(jsonc.JsonSyntaxError) as caught:
        jsonc.parse(text)
    assert caught.value.line == line
    assert caught.value.message.startswith(message)


# -- sizes ----------------------------------------------------------------------

@pytest.mark.parametrize("text, expected", [
    ("256MB", 256 * 2**20),
    ("1B", 1),
    ("0B", 0),
    ("4KB", 4096),
    ("1GB", 2**30),
    ("2TB", 2 * 2**40),
    ("  32MB\t", 32 * 2**20),
    ("32 MB", 32 * 2**20),  # Occlum trims the number part too
    ("007KB", 7 * 1024),
])
def test_parse_size(text, expected):
    assert parse_size(text) == expected


@pytest.mark.parametrize("text", [
    "256M", "256mb", "256Mb", "MB", "", "1.5GB", "-1MB", "+1MB", "0x10MB", "1 0MB", "100 MiB",
    "12", "\uff11\uff12MB", 256, None, True, "16777216TB",
])
def test_parse_size_refuses(text):
    with pytest.raises(ValueError) as caught:
        parse_size(text)
    assert "size" in str(caught.value)


def test_parse_size_message():
    with pytest.raises(ValueError, match=r'^"256M" is not a size; use B, KB, MB, GB or TB \(e\.g\. "256MB"\)$'):
        parse_size("256M")


def test_format_size():
    assert [format_size(n) for n in (0, 1, 4096, 3 * 2**20, 2**20 + 1, 5 * 2**40)] == \
        ["0B", "1B", "4KB", "3MB", "1048577B", "5TB"]


# -- the resolved configuration --------------------------------------------------

FULL = """{
    // everything given, some of it unusual
    "resource_limits": {
        "kernel_space_heap_size": "64MB",
        "kernel_space_heap_max_size": "128MB",
        "kernel_space_stack_size": "2MB",
        "user_space_size": " 1GB ",
        "max_num_of_threads": 64,
        "init_num_of_threads": 8,
        "unknown_limit": 1
    },
    "process": {"default_stack_size": "8MB", "default_heap_size": "64MB"},
    "entry_points": ["/bin/", "/usr//local/bin"],
    "env": {"default": ["A=1"]},
    "metadata": {"product_id": 7, "debuggable": false, "enable_kss": true,
                 "family_id": {"high": "0xABC", "low": "0x1"}},
    "feature": {"io_uring": 4, "amx": 2},
    "mount": [
        {"target": "/", "type": "unionfs", "options": {"layers": [
            {"target": "/", "type": "sefs", "source": "./build/mount/__ROOT",
             "options": {"MAC": "00-11-22-33-44-55-66-77-88-99-aa-bb-cc-dd-ee-ff"}},
            {"target": "/", "type": "sefs", "source": "./run/mount/__ROOT", "options": {"cache_size": "1MB"}}]}},
        {"target": "/tmp/", "type": "sefs", "options": {"temporary": true, "index": 1}},
        {"target": "/shm", "type": "ramfs"}
    ]
}"""


def test_resolved_shape(tmp_path):
    loaded = load_config(write_instance(tmp_path, FULL))
    resolved = loaded.resolved
    assert loaded.warnings == [f"{tmp_path / 'Occlum.json'}:10: resource_limits.unknown_limit: unknown key, ignored"]
    assert resolved["resource_limits"] == {
        "kernel_space_heap_size": 64 * 2**20,
        "kernel_space_heap_max_size": 128 * 2**20,
        "kernel_space_stack_size": 2 * 2**20,
        "user_space_size": 2**30,
        "user_space_max_size": 2**30,
        "max_num_of_threads": 64,
        "init_num_of_threads": 8,
    }
    assert resolved["process"] == {"default_stack_size": 8 * 2**20, "default_heap_size": 64 * 2**20,
                                   "default_mmap_size": 100 * 2**20}
    assert resolved["entry_points"] == ["/bin", "/usr/local/bin"]
    assert resolved["env"] == {"default": ["A=1"], "untrusted": ["EXAMPLE"]}
    assert resolved["metadata"] == {
        "product_id": 7, "version_number": 0, "debuggable": False, "enable_kss": True,
        "disable_log": True,  # not debuggable: a release enclave logs nothing
        "family_id": {"high": "0xABC", "low": "0x1"}, "ext_prod_id": {"high": "0x0", "low": "0x0"},
    }
    assert resolved["feature"] == {"amx": 2, "pkru": 0, "io_uring": 4, "enable_edmm": False,
                                   "enable_posix_shm": False}
    root, tmp, shm = resolved["mount"]
    assert root["source"] is None and root["options"]["layers"][1] == {
        "target": "/", "type": "sefs", "source": "./run/mount/__ROOT", "options": {"cache_size": 2**20}}
    assert tmp == {"target": "/tmp", "type": "sefs", "source": None, "options": {"temporary": True, "index": 1}}
    assert shm == {"target": "/shm", "type": "ramfs", "source": None, "options": {}}
    assert list(resolved) == ["resource_limits", "process", "entry_points", "env", "metadata",
                              "feature", "mount"]


def test_resolved_is_json_and_deterministic(tmp_path):
    first = load_config(write_instance(tmp_path / "a", FULL)).resolved
    second = load_config(write_instance(tmp_path / "b", FULL)).resolved
    assert json.dumps(first) == json.dumps(second)
    assert json.loads(json.dumps(first)) == first


def test_disable_log_given_wins(tmp_path):
    loaded = load_config(write_instance(tmp_path, '{"metadata": {"debuggable": false, "disable_log": false}}'))
    assert loaded.resolved["metadata"]["disable_log"] is False


# -- the schema and the run path -----------------------------------------------

def test_schema_is_valid_2020_12_and_fully_worded():
    schema = load_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema_path().name == "occlum.schema.json"
    structural = {"$schema", "$id", "$ref", "$defs", "$comment", "title", "description", "properties",
                  "items", "allOf", "if", "then", "not", "x-expected", "x-why"}
    found = set()

    def walk(node):
        if isinstance(node, dict):
            for key, value in node.items():
                if key in ("properties", "$defs"):
                    for sub in value.values():
                        walk(sub)
                    continue
                found.add(key)
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(schema)
    assert found - structural - HANDLED_KEYWORDS == set()


def test_importing_config_does_not_import_jsonschema():
    code = "import sys, occlum_tasks.config; sys.exit('jsonschema' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


# -- limits of the enclave (issue 7: a config error with its line, not a hang) ------

def _limits_config(**limits):
    base = {"kernel_space_heap_size": "32MB", "kernel_space_stack_size": "1MB",
            "user_space_size": "300MB", "max_num_of_threads": 32}
    return json.dumps({"resource_limits": dict(base, **limits)}, indent=1)


def test_enclave_size_limit_is_exact_and_agrees_with_the_layout(tmp_path):
    from occlum_tasks.sgx.layout import EnclaveLayout
    from occlum_tasks.sgx.limits import MAX_ENCLAVE_SIZE, PAGE_SIZE
    # what the layout puts before user space for a one-page manifest: 2 pages, guard,
    # 32MB heap, 32 thread slots of 1MB + 5 pages, the guard below user space
    used = (3 + 8192 + 32 * (256 + 5) + 1) * PAGE_SIZE
    fits = f"{MAX_ENCLAVE_SIZE - used}B"
    over = f"{MAX_ENCLAVE_SIZE - used + PAGE_SIZE}B"
    assert outcome(write_instance(tmp_path / "a", _limits_config(user_space_size=fits)))[0] == []
    problems = outcome(write_instance(tmp_path / "b", _limits_config(user_space_size=over)))[0]
    assert len(problems) == 1 and "Occlum.json:5: resource_limits.user_space_size:" in problems[0]
    assert "64GB" in problems[0]
    resolved = load_config(tmp_path / "a" / "Occlum.json").resolved
    layout = EnclaveLayout.from_config(resolved, b"m" * PAGE_SIZE, bytes(16))
    assert layout.enclave_size == MAX_ENCLAVE_SIZE and layout.total_size == MAX_ENCLAVE_SIZE
    resolved["resource_limits"]["user_space_size"] += PAGE_SIZE
    with pytest.raises(ConfigError, match=r"user_space_size: too large.*at most 64GB"):
        EnclaveLayout.from_config(resolved, b"m" * PAGE_SIZE, bytes(16))


def test_thread_limit_is_the_layouts(tmp_path):
    from occlum_tasks.sgx.layout import EnclaveLayout
    from occlum_tasks.sgx.limits import MAX_THREADS
    limits = load_schema()["properties"]["resource_limits"]["properties"]["max_num_of_threads"]
    assert limits["maximum"] == MAX_THREADS
    ok = _limits_config(max_num_of_threads=MAX_THREADS, kernel_space_stack_size="64KB")
    assert outcome(write_instance(tmp_path / "a", ok))[0] == []
    resolved = load_config(tmp_path / "a" / "Occlum.json").resolved
    EnclaveLayout.from_config(resolved, b"m", bytes(16))
    resolved["resource_limits"]["max_num_of_threads"] += 1
    with pytest.raises(ConfigError, match=f"max_num_of_threads: {MAX_THREADS + 1} is more than"):
        EnclaveLayout.from_config(resolved, b"m", bytes(16))


def test_max_sizes_count_only_with_edmm(tmp_path):
    text = _limits_config(kernel_space_heap_max_size="128GB", user_space_max_size="1TB",
                          user_space_size="63GB")
    assert outcome(write_instance(tmp_path / "a", text)) == ([], [])
    with_edmm = json.loads(text)
    with_edmm["feature"] = {"enable_edmm": True}
    problems = outcome(write_instance(tmp_path / "b", json.dumps(with_edmm, indent=1)))[0]
    assert len(problems) == 1 and "resource_limits.user_space_max_size:" in problems[0], problems


def test_hostfs_outside_the_instance_is_said_aloud(tmp_path, monkeypatch):
    instance = tmp_path / "inst"
    (tmp_path / "elsewhere").mkdir()
    config = json.loads(render_template(plain=True))
    config["mount"] += [{"target": "/all", "type": "hostfs", "source": "/"},
                        {"target": "/up", "type": "hostfs", "source": "../elsewhere"},
                        {"target": "/back", "type": "hostfs", "source": "../inst"}]
    path = write_instance(instance, json.dumps(config, indent=1))
    (instance / "inside").symlink_to(tmp_path / "elsewhere")
    config["mount"].append({"target": "/link", "type": "hostfs", "source": "inside"})
    path.write_text(json.dumps(config, indent=1))
    monkeypatch.chdir(instance)
    problems, warnings = outcome(Path("Occlum.json"))
    assert problems == []
    assert len(warnings) == 3, warnings
    assert "mount[4].source: \"/\" is the host's root" in warnings[0]
    outside = f"everything under {(tmp_path / 'elsewhere').resolve()}"
    assert "mount[5].source" in warnings[1] and outside in warnings[1]
    # a link inside the instance that leads out is outside too
    assert "mount[7].source" in warnings[2] and outside in warnings[2]
