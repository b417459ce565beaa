"""Errors the tasks report to the user without a traceback."""


class LhdError(Exception):
    """A failure whose message names what went wrong and what to do next."""
