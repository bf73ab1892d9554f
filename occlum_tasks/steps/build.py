"""Task `build`: the whole graph, and the console reporter that says what it did."""
import sys

from doit.reporter import ConsoleReporter

from ..fsutil import write_atomic
from .common import step_action
from ..paths import STATUS_FILE

STEPS = ("config", "initfs", "image", "sysconf", "runtime", "sign")


@step_action
def mark_built():
    write_atomic(STATUS_FILE, "built")


def task_build():
    return {
        "doc": "build the signed, integrity-protected Occlum instance (all steps)",
        "task_dep": list(STEPS),
        "actions": [mark_built],
        "verbosity": 2,
    }


class BuildReporter(ConsoleReporter):
    """doit's console lines (`.  step` ran, `-- step` up to date), a closing line
    that says whether anything was built, and failures as their one-line messages
    instead of doit's report blocks."""

    desc = "occlum build output"
    # set by `doit run /bin/app`: the program's output should not follow build chatter
    quiet = False

    def initialize(self, tasks, selected_tasks):
        self.selected = set(selected_tasks)
        self.executed = []

    def write(self, text):
        if not self.quiet:
            super().write(text)

    def execute_task(self, task):
        if task.name in STEPS:
            self.executed.append(task.name)
            super().execute_task(task)

    def skip_uptodate(self, task):
        if task.name in STEPS:
            super().skip_uptodate(task)

    def add_failure(self, task, fail):
        self.failures.append({"task": task, "exception": fail})
        sys.stderr.write(fail.message.rstrip("\n") + "\n")
        if fail.traceback:
            sys.stderr.write("".join(fail.traceback))

    def complete_run(self):
        if self.runtime_errors:
            sys.stderr.write("\n".join(self.runtime_errors) + "\n")
        if self.failures or self.runtime_errors or "build" not in self.selected:
            return
        if self.executed:
            self.write("Built the Occlum image and enclave successfully\n")
        else:
            self.write("Nothing to do: the Occlum image and enclave are up to date "
                       "(occlum build -f rebuilds everything)\n")
