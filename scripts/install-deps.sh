#!/usr/bin/env bash
# Install everything sluice needs to build, test and benchmark on Debian 12.
# Run as root (or with sudo). Every dependency the project uses is named here.
set -euo pipefail

if [ "$(id -u)" != 0 ]; then
    exec sudo -E bash "$0" "$@"
fi

packages=(
    # build
    build-essential cmake pkg-config git file
    # runtime libraries (with headers)
    libconfig-dev      # configuration files
    libmsgpack-dev     # wire format (msgpack-c)
    libjansson-dev     # JSON: JSON Lines input, status --json, value checks
    libcsv-dev         # CSV input (RFC 4180)
    libsqlite3-dev     # state store
    libssl-dev         # spill-store encryption (OpenSSL EVP)
    libmicrohttpd-dev  # metrics endpoint (Prometheus text over HTTP)
    libpq-dev          # sink-pg / source-pg (libpq)
    libmariadb-dev     # sink-mysql (MariaDB Connector/C, MySQL compatible)
    unixodbc-dev unixodbc      # sink-odbc (unixODBC driver manager)
    libsqliteodbc      # SQLite ODBC driver: the quick start's embedded target
    # tests
    libcmocka-dev      # unit tests
    clang libclang-rt-14-dev   # libFuzzer targets
    postgresql postgresql-client   # real PostgreSQL started by the tests on loopback
    mariadb-server mariadb-client  # real MariaDB started by the tests on loopback
    odbc-postgresql odbc-mariadb   # ODBC drivers for the conformance suite
    sqlite3            # inspecting state stores and SQLite targets
    python3-prometheus-client  # the metrics test parses the scrape with it
    dpkg-dev           # cpack -G DEB (dpkg-shlibdeps) in the package test
    python3            # sample-data generator
    util-linux procps psmisc time bc  # runuser, pkill, /usr/bin/time (peak RSS), bc (bench ratios)
)

export DEBIAN_FRONTEND=noninteractive
if [ "${SLUICE_SKIP_APT_UPDATE:-0}" != 1 ]; then
    apt-get update -qq
fi
apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
# The Debian package may create and start a default cluster; the tests and the
# quick start use their own throwaway servers, so it is left alone.
echo "install-deps: ok"
