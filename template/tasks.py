"""Invoke tasks of this project; `inv --list` shows them.

The tasks live in the `lhd` package beside this file, so they can be
tested and linted like any other Python code.
"""

from lhd.devtasks import namespace  # noqa: F401
