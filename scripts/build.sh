#!/usr/bin/env bash
# Configure and build sluice into build/ (or $SLUICE_BUILD_DIR).
# Extra arguments go to cmake's configure step, e.g. -DSLUICE_SANITIZE=ON.
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
build=${SLUICE_BUILD_DIR:-$src/build}
cmake -S "$src" -B "$build" -DCMAKE_BUILD_TYPE=${CMAKE_BUILD_TYPE:-RelWithDebInfo} "$@" >/dev/null
cmake --build "$build" -j"$(nproc)"
