"""`occlum run` and `doit run` as a user types them: output, arguments passed
untouched, exit statuses, and refusals before the guest runs."""
import re
import shutil
import subprocess
import sys

import pytest

PROGRAMS = {"hello_world": "hello_world.c", "args": "libos_args.c", "exit": "libos_exit.c",
            "segv": "libos_segv.c"}


def cli(cwd, *args, env=None):
    import os
    return subprocess.run([sys.executable, "-m", "occlum_tasks.cli", *map(str, args)], cwd=cwd,
                          capture_output=True, text=True, env=dict(os.environ, **(env or {})))


@pytest.fixture(scope="module")
def instance(tmp_path_factory, compile_program):
    top = tmp_path_factory.mktemp("run")
    assert cli(top, "new", "inst").returncode == 0
    inst = top / "inst"
    for name, source in PROGRAMS.items():
        shutil.copy(compile_program(source), inst / "image" / "bin" / name)
    text = (inst / "Occlum.json").read_text()
    text = re.sub(r'("default"\s*:\s*)\[[^\]]*\]', r'\1["OCCLUM=yes", "OCCLUM_TEST=yes"]', text,
                  count=1)
    text = re.sub(r'("untrusted"\s*:\s*)\[[^\]]*\]', r'\1["EXAMPLE", "OCCLUM_TEST"]', text, count=1)
    (inst / "Occlum.json").write_text(text)
    proc = cli(inst, "build")
    assert proc.returncode == 0, proc.stderr
    return inst


def test_hello_world(instance):
    proc = cli(instance, "run", "/bin/hello_world")
    assert (proc.returncode, proc.stdout) == (0, "Hello World\n"), proc.stderr


def test_arguments_arrive_untouched(instance):
    args = ["A=B", "-x", "--", "--flag", "two words", ""]
    proc = cli(instance, "run", "/bin/args", *args)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == "argv[0]=args"  # Occlum passes the basename
    assert lines[1:7] == [f"argv[{i}]={a}" for i, a in enumerate(args, 1)]


def test_doit_run_passes_arguments_untouched(instance):
    proc = subprocess.run([sys.executable, "-m", "doit", "run", "/bin/args", "A=B", "-x", "n=1"],
                          cwd=instance, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.splitlines()[:4] == ["argv[0]=args", "argv[1]=A=B", "argv[2]=-x",
                                            "argv[3]=n=1"]
    # the build's own lines stay out of the program's output
    assert "Nothing to do" not in proc.stdout
    # a program argument that looks like a build variable does not reach the build
    proc = subprocess.run([sys.executable, "-m", "doit", "run", "/bin/args", "sign_key=/nope",
                           "sgx_mode=HW"], cwd=instance, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "argv[1]=sign_key=/nope" in proc.stdout.splitlines()


def test_environment_trusted_untrusted_and_override(instance):
    # env.untrusted names EXAMPLE (the template's) and, here, OCCLUM_TEST: a host value
    # of a listed name passes in and overrides the default; unlisted names stay out
    proc = cli(instance, "run", "/bin/args",
               env={"EXAMPLE": "from-host", "SECRET": "must-not-pass"})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    env = [line[4:] for line in proc.stdout.splitlines() if line.startswith("env ")]
    assert "OCCLUM=yes" in env and "OCCLUM_TEST=yes" in env and "EXAMPLE=from-host" in env
    assert not any(e.startswith("SECRET=") for e in env)
    proc = cli(instance, "run", "/bin/args", env={"OCCLUM_TEST": "no"})
    assert proc.returncode == 11  # the program saw the host's override of the default


@pytest.mark.parametrize("status", [0, 3, 42, 255])
def test_exit_status(instance, status):
    proc = cli(instance, "run", "/bin/exit", str(status))
    assert proc.returncode == status and "atexit ran" in proc.stdout


def test_doit_run_exit_status(instance):
    proc = subprocess.run([sys.executable, "-m", "doit", "run", "/bin/exit", "7"], cwd=instance,
                          capture_output=True, text=True)
    assert proc.returncode == 7, proc.stdout + proc.stderr


def test_segv_is_139_with_one_line(instance):
    proc = cli(instance, "run", "/bin/segv")
    assert proc.returncode == 139
    assert proc.stdout == "before the fault\n"
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert "SIGSEGV" in proc.stderr


@pytest.mark.parametrize("path", ["/usr/bin/hello_world", "bin/hello_world",
                                  "/bin/../bin/hello_world", "/bin/missing"])
def test_cannot_start_is_127(instance, path):
    proc = cli(instance, "run", path)
    assert proc.returncode == 127, (path, proc.stderr)
    assert proc.stdout == "" and len(proc.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("path, hint", [("bin/hello_world", "/bin/hello_world"),
                                        ("./bin/hello_world", "/bin/hello_world"),
                                        ("hello_world", "/bin/hello_world"),
                                        ("usr/bin/app", "/usr/bin/app")])
def test_a_relative_path_gets_the_path_from_the_image_root(instance, path, hint):
    proc = cli(instance, "run", path)
    assert proc.returncode == 127
    assert proc.stderr == (f"occlum run: {path}: the program path must be absolute, a path "
                           f"in the image (e.g. {hint})\n")


def test_run_before_build(tmp_path):
    cli(tmp_path, "init")
    proc = cli(tmp_path, "run", "/bin/hello_world")
    assert proc.returncode == 1 and "occlum build" in proc.stderr


def test_run_keeps_doit_and_jsonschema_off_the_path(instance):
    probe = ("import sys, runpy; sys.argv=['occlum','run','/bin/hello_world']\n"
             "from occlum_tasks import cli\n"
             "status = cli.main(['run', '/bin/hello_world'])\n"
             "print(sorted(m for m in ('doit', 'jsonschema') if m in sys.modules))\n")
    proc = subprocess.run([sys.executable, "-c", probe], cwd=instance, capture_output=True,
                          text=True)
    assert proc.stdout.splitlines() == ["Hello World", "[]"], proc.stdout + proc.stderr
