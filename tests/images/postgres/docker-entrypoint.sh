#!/usr/bin/env bash
# Entrypoint of lhd-test/postgres:15: the environment contract of the official
# `postgres` image (docker-library/postgres, 15/bookworm), on Debian's packages.
#
#   POSTGRES_USER              superuser name, default postgres
#   POSTGRES_PASSWORD          superuser password, required unless auth is trust
#   POSTGRES_DB                database created at init, default $POSTGRES_USER
#   POSTGRES_HOST_AUTH_METHOD  pg_hba method for remote hosts, default scram-sha-256
#   POSTGRES_INITDB_ARGS       extra initdb arguments
#   PGDATA                     data directory, default /var/lib/postgresql/15/docker
#
# Each variable except PGDATA may instead be read from the file named by
# <NAME>_FILE. On an empty PGDATA the script runs initdb, then the *.sh, *.sql
# and *.sql.gz files in /docker-entrypoint-initdb.d in name order, and finally
# execs postgres as the postgres user.
set -Eeo pipefail

# Set variable $1 from itself or from the file named by ${1}_FILE, else to $2.
file_env() {
  local var="$1" file_var="${1}_FILE" default="${2:-}"
  if [ "${!var:-}" ] && [ "${!file_var:-}" ]; then
    echo >&2 "error: both $var and $file_var are set, but they are exclusive"
    exit 1
  fi
  local value="$default"
  if [ "${!var:-}" ]; then
    value="${!var}"
  elif [ "${!file_var:-}" ]; then
    value="$(<"${!file_var}")"
  fi
  export "$var"="$value"
  unset "$file_var"
}

setup_env() {
  file_env POSTGRES_PASSWORD
  file_env POSTGRES_USER postgres
  file_env POSTGRES_DB "$POSTGRES_USER"
  file_env POSTGRES_INITDB_ARGS
  : "${POSTGRES_HOST_AUTH_METHOD:=scram-sha-256}"
  DATABASE_ALREADY_EXISTS=
  if [ -s "$PGDATA/PG_VERSION" ]; then
    DATABASE_ALREADY_EXISTS=true
  fi
}

# Create PGDATA and the socket directory and give them to postgres (as root only).
create_db_directories() {
  mkdir -p "$PGDATA"
  chmod 00700 "$PGDATA" || :
  mkdir -p /var/run/postgresql
  chmod 03775 /var/run/postgresql || :
  if [ "$(id -u)" = 0 ]; then
    find "$PGDATA" \! -user postgres -exec chown postgres:postgres '{}' +
    find /var/run/postgresql \! -user postgres -exec chown postgres:postgres '{}' +
  fi
}

verify_minimum_env() {
  if [ -z "$POSTGRES_PASSWORD" ] && [ "$POSTGRES_HOST_AUTH_METHOD" != trust ]; then
    cat >&2 <<'MESSAGE'
Error: Database is uninitialized and superuser password is not specified.
       You must specify POSTGRES_PASSWORD to a non-empty value for the
       superuser. For example, "-e POSTGRES_PASSWORD=password" on "docker run".

       You may also use "POSTGRES_HOST_AUTH_METHOD=trust" to allow all
       connections without a password. This is *not* recommended.
MESSAGE
    exit 1
  fi
  if [ "$POSTGRES_HOST_AUTH_METHOD" = trust ]; then
    echo "WARNING: POSTGRES_HOST_AUTH_METHOD=trust lets every host connect without a password." >&2
  fi
}

init_database_dir() {
  # The password goes through a pipe, so it never shows in the process list.
  # initdb's default pg_hba.conf trusts local socket and loopback connections.
  # shellcheck disable=SC2086 # POSTGRES_INITDB_ARGS is split into words on purpose
  initdb --username="$POSTGRES_USER" --pwfile=<(printf '%s\n' "$POSTGRES_PASSWORD") \
    $POSTGRES_INITDB_ARGS
}

setup_hba_conf() {
  {
    echo
    if [ "$POSTGRES_HOST_AUTH_METHOD" = trust ]; then
      echo '# warning trust is enabled for all connections'
    fi
    echo "host all all all $POSTGRES_HOST_AUTH_METHOD"
  } >>"$PGDATA/pg_hba.conf"
}

# Start a server that listens only on the Unix socket, for the init scripts.
temp_server_start() {
  PGUSER="$POSTGRES_USER" pg_ctl -D "$PGDATA" \
    -o "-c listen_addresses='' -p ${PGPORT:-5432}" -w start
}

temp_server_stop() {
  PGUSER="$POSTGRES_USER" pg_ctl -D "$PGDATA" -m fast -w stop
}

psql_init() {
  psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --no-password --no-psqlrc "$@"
}

setup_database() {
  if [ "$POSTGRES_DB" != postgres ]; then
    echo 'CREATE DATABASE :"db";' | psql_init --dbname postgres --set db="$POSTGRES_DB"
    echo "Created database $POSTGRES_DB"
  fi
}

process_init_files() {
  local file
  for file in /docker-entrypoint-initdb.d/*; do
    [ -e "$file" ] || continue
    case "$file" in
      *.sh)
        if [ -x "$file" ]; then
          echo "$0: running $file"
          "$file"
        else
          echo "$0: sourcing $file"
          # shellcheck disable=SC1090
          . "$file"
        fi
        ;;
      *.sql)
        echo "$0: running $file"
        psql_init --dbname "$POSTGRES_DB" -f "$file"
        ;;
      *.sql.gz)
        echo "$0: running $file"
        gunzip -c "$file" | psql_init --dbname "$POSTGRES_DB"
        ;;
      *)
        echo "$0: ignoring $file"
        ;;
    esac
  done
}

main() {
  # `docker run image -c fsync=off` means `postgres -c fsync=off`.
  if [ "${1:0:1}" = '-' ]; then
    set -- postgres "$@"
  fi
  if [ "$1" != postgres ]; then
    exec "$@"
  fi

  setup_env
  create_db_directories
  if [ "$(id -u)" = 0 ]; then
    # Start again as postgres, so that initdb and the server do not run as root.
    exec gosu postgres "$BASH_SOURCE" "$@"
  fi

  if [ -z "$DATABASE_ALREADY_EXISTS" ]; then
    verify_minimum_env
    init_database_dir
    setup_hba_conf
    export PGPASSWORD="${PGPASSWORD:-$POSTGRES_PASSWORD}"
    temp_server_start
    setup_database
    process_init_files
    temp_server_stop
    unset PGPASSWORD
    echo
    echo 'PostgreSQL init process complete; ready for start up.'
    echo
  else
    echo
    echo 'PostgreSQL Database directory appears to contain a database; Skipping initialization'
    echo
  fi

  exec "$@"
}

main "$@"
