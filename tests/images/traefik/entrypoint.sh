#!/bin/sh
# The entrypoint of the official traefik image: options alone run traefik,
# and a Traefik subcommand (`version`, `healthcheck`) runs through traefik.
set -e

if [ "${1#-}" != "$1" ]; then
    set -- traefik "$@"
fi

if traefik "$1" --help >/dev/null 2>&1; then
    set -- traefik "$@"
else
    echo "= '$1' is not a Traefik command: assuming shell execution." 1>&2
fi

exec "$@"
