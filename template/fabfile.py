"""Fabric tasks of this project, for the production server; `fab --list`
shows them. They live in the `lhd` package beside this file."""

from lhd.fabtasks import namespace  # noqa: F401
