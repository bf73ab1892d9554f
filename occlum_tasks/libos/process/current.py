"""The thread running on the CPU now (Occlum's `current!()`); set by the scheduler."""
thread = None


def get():
    return thread


def set(new_thread) -> None:   # noqa: A001 - the scheduler's word
    global thread
    thread = new_thread
