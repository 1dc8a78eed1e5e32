# Sourced by the scripts that run servers from Debian's packages: what is
# missing is installed (as root), and PostgreSQL's binaries are found.
#
#   . scripts/debian.sh
#   debian_install wrk:wrk redis-server:redis-server postgresql:initdb
#
# Each argument is PACKAGE:COMMAND; the package is installed when the command
# is not found (`initdb` is looked for in PostgreSQL's own bin directory).

# The newest installed PostgreSQL's bin directory (empty if none).
pg_bin() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1; }

debian_install() {
    local need=() spec pkg cmd
    for spec in "$@"; do
        pkg="${spec%%:*}" cmd="${spec#*:}"
        if [ "$cmd" = initdb ]; then
            [ -x "$(pg_bin)/initdb" ] || need+=("$pkg")
        else
            command -v "$cmd" >/dev/null 2>&1 || need+=("$pkg")
        fi
    done
    [ ${#need[@]} -eq 0 ] && return 0
    echo "installing ${need[*]} from Debian's packages" >&2
    apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
}
