"""Processes and threads: the process table, the loader, exit and ids.

This package's __init__ imports nothing, so that other subsystems can import
`process.current` without an import cycle.
"""
