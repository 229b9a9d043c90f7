#!/usr/bin/env bash
# test.sh - installs what the tests need, builds, and runs every test: unit tests, the
# integration suite (a real host and runners on loopback), then the unit and integration
# suites again under AddressSanitizer + UndefinedBehaviorSanitizer, and the native-task and
# VPS workloads with both daemons under valgrind (a memory error or definite leak fails it).
# Needs root (runners manage cgroups). Ends with prove's summary line.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" -ne 0 ]; then
    echo "test.sh: the integration tests manage cgroups and must run as root (try: sudo $0)" >&2
    exit 1
fi
scripts/install-deps.sh --test
make -j2 WERROR=1 all
rc=0
make WERROR=1 check-unit || rc=1
make WERROR=1 check-integration || rc=1
if [ "${SKIP_ASAN:-}" != 1 ]; then
    make BUILD=build-asan SANITIZE=address,undefined OPT="-O1 -g" WERROR=1 -j2 all
    ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
        make BUILD=build-asan SANITIZE=address,undefined OPT="-O1 -g" check-unit || rc=1
    ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
        HR_ASAN=1 make BUILD=build-asan SANITIZE=address,undefined OPT="-O1 -g" check-integration || rc=1
fi
if [ "${SKIP_VALGRIND:-}" != 1 ]; then
    HR_VALGRIND=1 make check-integration \
        INTEGRATION_TESTS="tests/integration/t0200-native-tasks.t tests/integration/t0700-vps.t" \
        || rc=1
fi
if [ $rc -eq 0 ]; then echo "ALL TESTS PASSED"; else echo "SOME TESTS FAILED"; fi
exit $rc
