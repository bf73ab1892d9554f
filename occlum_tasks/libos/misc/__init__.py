"""System calls that belong to no other subsystem: uname, getrandom."""
