"""Rules that keep an Occlum.json buildable and honest about what it lets in.

- The enclave's address space: what resource_limits asks for must fit in the largest
  SGX enclave (sgx/limits.py says why 64GB); beyond it the build would hash for hours
  or overflow ECREATE's size field. The thread count's bound is the schema's
  (`maximum`), the same number as sgx.limits.MAX_THREADS.
- entry_points must name something: with none, no program could ever be started.
- Strings may not hold NUL: no path or environment string can carry one (execve would
  cut "A=x\\0y" to "A=x" while the measured config says otherwise).
- Environment names: what a program and a shell can use.
- A hostfs folder outside the instance, or the host's "/", is allowed but said aloud:
  the enclave can read and write all of it.

Like checks.py, each rule looks only at values of the right form and leaves the
wrong ones to the schema's message.
"""

import os
import re
from pathlib import Path

from ..sgx.limits import MAX_THREADS, PAGE_SIZE, size_limit_problem
from .defaults import effective, section
from .report import show
from .sizes import size_or_none

# A name a POSIX shell can set and read; a program gets any name, but one that starts
# with a digit or holds a blank or a control character is a mistake, not a choice.
_PORTABLE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_BROKEN_NAME = re.compile(r"[0-9]|.*[\s\x00-\x1f\x7f]", re.S)


def check_bounds(config, findings, instance_dir):
    if not isinstance(config, dict):
        return
    _check_enclave_size(config, findings)
    _check_entry_points(config, findings)
    _check_nul(config, (), findings)
    _check_env_names(config, findings)
    if isinstance(config.get("mount"), list):
        _check_host_exposure(config["mount"], findings, Path(instance_dir))


def effective_size(config, section_name, key):
    """The user's size in bytes, the default's when absent, None when the user's is
    invalid (checks.py uses it too)."""
    if section_name in config and not isinstance(config[section_name], dict):
        return None
    value = effective(config, section_name, key)
    return None if value is None else size_or_none(value)


def _check_enclave_size(config, findings):
    limits = section(config, "resource_limits")
    threads = effective(config, "resource_limits", "max_num_of_threads")
    if not (isinstance(threads, int) and not isinstance(threads, bool) and threads >= 1):
        return
    edmm = section(config, "feature").get("enable_edmm") is True
    heap = effective_size(config, "resource_limits", "kernel_space_heap_size")
    stack = effective_size(config, "resource_limits", "kernel_space_stack_size")
    user = effective_size(config, "resource_limits", "user_space_size")
    if None in (heap, stack, user):
        return
    heap_field, user_field = "kernel_space_heap_size", "user_space_size"
    if edmm:
        # with EDMM the *_max_size reserves lie inside the enclave too
        if "kernel_space_heap_max_size" in limits:
            heap, heap_field = size_or_none(limits["kernel_space_heap_max_size"]), "kernel_space_heap_max_size"
        if "user_space_max_size" in limits:
            user, user_field = size_or_none(limits["user_space_max_size"]), "user_space_max_size"
        if heap is None or user is None:
            return
    if threads > MAX_THREADS:
        return      # the schema's maximum says so
    # The runtime manifest's size is known only when the runtime step runs: count its
    # smallest, one page, so that nothing legal is refused here (the layout, made at
    # the sign step, checks again with the real size).
    problem = size_limit_problem(manifest_size=PAGE_SIZE, kernel_space_heap_max_size=heap,
                                 kernel_space_stack_size=stack, max_num_of_threads=threads,
                                 user_space_max_size=user, heap_field=heap_field,
                                 user_field=user_field)
    if problem:
        field, text = problem
        value = limits.get(field)
        findings.error(("resource_limits", field),
                       (f"{show(value)} is " if value is not None else "") + text)


def _check_entry_points(config, findings):
    if config.get("entry_points") == []:
        findings.error(("entry_points",), '[] lists no path prefix, so no program could be '
                                          'started; give at least one (e.g. ["/bin"])')


def _check_nul(value, path, findings):
    if isinstance(value, str):
        if "\0" in value:
            findings.error(path, f"{show(value)} contains a NUL character (\\u0000), which no "
                                 "path or environment string can hold: a program would see "
                                 "it cut short there")
    elif isinstance(value, dict):
        for key, item in value.items():
            _check_nul(item, path + (key,), findings)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            _check_nul(item, path + (i,), findings)


def _name_problem(name):
    """(is_error, text) for a variable name that is not portable, else None."""
    if _PORTABLE_NAME.match(name):
        return None
    if "\0" in name:
        return None     # _check_nul says it
    if _BROKEN_NAME.match(name):
        return True, (f"{show(name)} is not a valid variable name: it must not start with a "
                      "digit or contain blanks or control characters (letters, digits and _)")
    return False, (f"{show(name)} is not a portable variable name (letters, digits and _, "
                   "not starting with a digit); shells cannot set or read it")


def _check_env_names(config, findings):
    env = section(config, "env")
    for key in ("default", "untrusted"):
        items = env.get(key)
        if not isinstance(items, list):
            continue
        for i, item in enumerate(items):
            if not isinstance(item, str) or not item:
                continue
            if key == "default":
                if "=" not in item or item.startswith("="):
                    continue    # the schema's message
                name = item.split("=", 1)[0]
            elif "=" in item:
                continue
            else:
                name = item
            problem = _name_problem(name)
            if problem:
                is_error, text = problem
                (findings.error if is_error else findings.warn)(("env", key, i), text)


def _check_host_exposure(mounts, findings, instance_dir):
    """Top-level hostfs mounts whose folder is "/" or outside the instance folder."""
    try:
        inside = os.path.realpath(instance_dir)
    except OSError:
        return
    for i, mount in enumerate(mounts):
        if not isinstance(mount, dict) or mount.get("type") != "hostfs":
            continue
        source = mount.get("source")
        if not isinstance(source, str) or not source or "\0" in source:
            continue
        folder = os.path.realpath(source if os.path.isabs(source) else instance_dir / source)
        if not os.path.isdir(folder):
            continue        # checks.py reports a missing folder
        path = ("mount", i, "source")
        if folder == "/":
            findings.warn(path, f"{show(source)} is the host's root: the enclave can read and "
                                "write the whole host file system (as far as this user may)")
        elif os.path.commonpath([folder, inside]) != inside:
            findings.warn(path, f"{show(source)} is outside the instance folder: the enclave can "
                                f"read and write everything under {folder}")
