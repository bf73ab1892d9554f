"""Inter-process communication: pipes (pipe.py) and readiness waits over any
descriptor (poll.py: poll, ppoll, select, pselect6). Their calls are in syscalls.py."""
