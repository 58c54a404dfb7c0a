#!/usr/bin/env bash
# A throwaway PostgreSQL server for the ledger tests, from Debian's postgresql package.
#
#   toolchain/postgres.sh start DIR PORT   # new cluster in DIR, listening on 127.0.0.1:PORT
#   toolchain/postgres.sh stop DIR
#
# `start` prints the SQLAlchemy URL of the database `fundtrail_test`. The cluster trusts local
# connections and skips fsync, because it contains test data only, which `stop` deletes.
set -euo pipefail

command=${1:?usage: postgres.sh start DIR PORT | stop DIR}
folder=${2:?usage: postgres.sh start DIR PORT | stop DIR}

bindir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
if [[ -z "$bindir" ]]; then
    echo "PostgreSQL is not installed: run 'apt-get install -y postgresql' (Debian)." >&2
    exit 1
fi

# initdb and postgres refuse to run as root, so as root the server runs as Debian's
# `postgres` user, which the package creates.
as_owner() {
    if [[ $(id -u) -eq 0 ]]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

case "$command" in
start)
    port=${3:?usage: postgres.sh start DIR PORT}
    rm -rf "$folder"
    mkdir -p "$folder"
    if [[ $(id -u) -eq 0 ]]; then
        chown postgres: "$folder"
    fi
    as_owner "$bindir/initdb" -D "$folder/data" -A trust -U postgres --no-sync >"$folder/initdb.log"
    as_owner "$bindir/pg_ctl" -D "$folder/data" -l "$folder/server.log" -w start \
        -o "-p $port -k $folder -c listen_addresses=127.0.0.1 -c fsync=off" >/dev/null
    as_owner "$bindir/createdb" -h 127.0.0.1 -p "$port" -U postgres fundtrail_test
    echo "postgresql://postgres@127.0.0.1:$port/fundtrail_test"
    ;;
stop)
    if [[ -d "$folder/data" ]]; then
        as_owner "$bindir/pg_ctl" -D "$folder/data" -m immediate stop >/dev/null || true
    fi
    rm -rf "$folder"
    ;;
*)
    echo "usage: postgres.sh start DIR PORT | stop DIR" >&2
    exit 2
    ;;
esac
