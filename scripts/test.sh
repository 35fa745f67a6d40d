#!/usr/bin/env bash
# The whole test suite: install dependencies, build warning-free (-Werror),
# run every CTest suite, then build again with AddressSanitizer +
# UndefinedBehaviorSanitizer and run the suites again. .ci/run calls this.
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
cd "$src"

bash scripts/install-deps.sh

jobs=$(nproc)
echo "== build (Release with debug info, -Werror)"
SLUICE_BUILD_DIR=$src/build bash scripts/build.sh -DSLUICE_WERROR=ON
echo "== tests"
ctest --test-dir build --output-on-failure -j"$jobs" ${SLUICE_CTEST_ARGS:-}

if [ "${SLUICE_SKIP_SANITIZE:-0}" != 1 ]; then
    echo "== build (AddressSanitizer + UndefinedBehaviorSanitizer)"
    SLUICE_BUILD_DIR=$src/build-asan CMAKE_BUILD_TYPE=Debug bash scripts/build.sh \
        -DSLUICE_WERROR=ON -DSLUICE_SANITIZE=ON
    echo "== tests under sanitizers"
    ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
        ctest --test-dir build-asan --output-on-failure -j"$jobs" ${SLUICE_CTEST_ARGS:-}
fi
echo "== all tests passed"
