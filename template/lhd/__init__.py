"""LHD task library: development, test and deploy commands for a Lucky +
Hasura + Postgres project run with Docker.

Modules import nothing heavy at import time, so `inv --list` stays fast.
"""
