"""Task `build`: the whole graph, its commit, and the console reporter that says what
it did."""
import sys

from doit.reporter import ConsoleReporter

from .common import step_action

STEPS = ("config", "initfs", "image", "sysconf", "runtime", "sign")


def _commit():
    from .commit import commit
    commit()


def _clean_committed():
    """`doit clean`: the committed build and the build's records (the steps clean their
    staged outputs). run/ is the user's data: it stays."""
    from .. import paths
    from ..build_state import BUILDING, COMMITTING
    from ..fsutil import remove_tree, write_atomic
    from .stage import COMMITTED_FILES, COMMITTED_TREES
    for _, committed in COMMITTED_TREES + COMMITTED_FILES:
        remove_tree(committed)
    for marker in (COMMITTING, BUILDING):
        remove_tree(marker)
    if paths.STATUS_FILE.is_file():
        write_atomic(paths.STATUS_FILE, "initialized")


def task_build():
    return {
        "doc": "build the signed, integrity-protected Occlum instance (all steps), then put "
               "it in place whole",
        "task_dep": list(STEPS),
        "actions": [step_action(_commit, stages=False)],
        "clean": [_clean_committed],
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
        self.committed = False

    def add_success(self, task):
        # only a commit makes a build: Ctrl-C (doit still reports) or a failed step must
        # not be told "Built ... successfully"
        if task.name == "build":
            self.committed = True
        super().add_success(task)

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
        if (self.failures or self.runtime_errors or "build" not in self.selected
                or not self.committed):
            return
        from .commit import changed
        if self.executed or any(changed):
            self.write("Built the Occlum image and enclave successfully\n")
        else:
            self.write("Nothing to do: the Occlum image and enclave are up to date "
                       "(occlum build -f rebuilds everything)\n")
