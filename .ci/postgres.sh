# Sourced by .ci/run: start a throwaway PostgreSQL server for the test that runs two sweep workers on one
# study (tests/test_sweep_run.py), and export GRAPHSPEC_TEST_POSTGRES_URL. Without the server binaries
# (the Debian package puts them in /usr/lib/postgresql/*/bin) it says so and the test is skipped.
# PostgreSQL refuses to run as root: as root, the server runs as the user graphspec-ci (created here,
# no home, no login) or, failing that, nobody; its data and socket live in a temporary folder.

start_postgres() {
  local bin user as=()
  # shellcheck disable=SC2086  # the glob is meant to expand
  bin=$( (ls -d ${GRAPHSPEC_PG_BINS:-/usr/lib/postgresql/*/bin} 2>/dev/null || true) | sort -V | tail -n 1)
  if [ -z "$bin" ] || [ ! -x "$bin/initdb" ] || [ ! -x "$bin/pg_ctl" ]; then
    echo "note: no PostgreSQL server (no /usr/lib/postgresql/*/bin/initdb): the PostgreSQL sweep test is skipped" >&2
    return 0
  fi
  GRAPHSPEC_PG_DIR=$(mktemp -d /tmp/graphspec-pg.XXXXXX)
  if [ "$(id -u)" = 0 ]; then
    user=graphspec-ci
    if ! id -u "$user" >/dev/null 2>&1; then
      useradd --system --no-create-home --shell /usr/sbin/nologin "$user" >/dev/null 2>&1 || user=nobody
    fi
    chown "$user" "$GRAPHSPEC_PG_DIR" || true
    if command -v runuser >/dev/null 2>&1; then
      as=(runuser -u "$user" --)
    else
      as=(setpriv --reuid="$user" --regid="$(id -g "$user")" --clear-groups --)
    fi
  fi
  GRAPHSPEC_PG_AS=("${as[@]}")
  GRAPHSPEC_PG_BIN=$bin
  if ! "${as[@]}" "$bin/initdb" -D "$GRAPHSPEC_PG_DIR/data" -U postgres -A trust --no-sync >"$GRAPHSPEC_PG_DIR/initdb.log" 2>&1 \
     || ! "${as[@]}" "$bin/pg_ctl" -D "$GRAPHSPEC_PG_DIR/data" -l "$GRAPHSPEC_PG_DIR/server.log" -w -t 60 \
          -o "-k $GRAPHSPEC_PG_DIR -c listen_addresses= -c fsync=off" start >/dev/null 2>&1 \
     || ! "${as[@]}" "$bin/createdb" -h "$GRAPHSPEC_PG_DIR" -U postgres graphspec_test >/dev/null 2>&1; then
    echo "warning: could not start PostgreSQL (see $GRAPHSPEC_PG_DIR/*.log): the PostgreSQL sweep test is skipped" >&2
    return 0
  fi
  export GRAPHSPEC_TEST_POSTGRES_URL="postgresql://postgres@/graphspec_test?host=$GRAPHSPEC_PG_DIR"
  echo "PostgreSQL $("$bin/pg_ctl" --version | awk "{print \$3}") for the sweep tests: $GRAPHSPEC_TEST_POSTGRES_URL"
}

stop_postgres() {
  if [ -n "${GRAPHSPEC_PG_DIR:-}" ] && [ -d "$GRAPHSPEC_PG_DIR/data" ]; then
    "${GRAPHSPEC_PG_AS[@]}" "$GRAPHSPEC_PG_BIN/pg_ctl" -D "$GRAPHSPEC_PG_DIR/data" -m fast -w stop >/dev/null 2>&1 || true
  fi
  if [ -n "${GRAPHSPEC_PG_DIR:-}" ]; then
    rm -rf "$GRAPHSPEC_PG_DIR"
  fi
}
