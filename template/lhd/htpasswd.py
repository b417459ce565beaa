"""Basic-auth entries for Traefik, hashed with libpass (the maintained fork
of passlib, imported as `passlib`)."""

from __future__ import annotations

from lhd.errors import LhdError

SCHEMES = ("bcrypt", "apr1")


def hash_password(password: str, scheme: str = "bcrypt") -> str:
    """Return the hash of `password` in a form Traefik's basicAuth accepts."""
    from passlib.hash import apr_md5_crypt, bcrypt

    if not password:
        raise LhdError("The password is empty; give a non-empty password.")
    if scheme == "bcrypt":
        if len(password.encode("utf-8")) > 72:
            raise LhdError(
                "bcrypt uses at most 72 bytes of a password; give a shorter one "
                "or use --scheme apr1."
            )
        return bcrypt.using(ident="2y").hash(password)
    if scheme == "apr1":
        return apr_md5_crypt.hash(password)
    raise LhdError(f"Unknown scheme {scheme!r}: use one of {', '.join(SCHEMES)}.")


def entry(user: str, password: str, scheme: str = "bcrypt") -> str:
    """Return `user:hash`, the line of an htpasswd file."""
    if not user or ":" in user:
        raise LhdError(f"Invalid user name {user!r}: give a name without `:`.")
    return f"{user}:{hash_password(password, scheme)}"


def for_compose_label(line: str) -> str:
    """Double every `$`, as Compose files need in a label value."""
    return line.replace("$", "$$")
