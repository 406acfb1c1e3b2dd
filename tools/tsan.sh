#!/usr/bin/env bash
# Builds the C++ thread-runtime stress driver (tests/cpp/team_stress.cpp) with
# ThreadSanitizer and runs it: concurrent callers, team size changes and cancelled
# (interrupted) calls, every completed call checked bitwise against a one-thread run.
# ThreadSanitizer cannot run inside CPython, hence a C++-only driver.
#
#   tools/tsan.sh [build-dir]        (default: build/tsan; needs cmake, ninja or make, pybind11)
#
# Exit status: the driver's (0 = no race reported, results exact).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD="${1:-build/tsan}"
PYTHON="${PYTHON:-python3}"
PYBIND11_DIR="$("$PYTHON" -m pybind11 --cmakedir)" \
  || { echo "tools/tsan.sh: $PYTHON cannot import pybind11 (pip install pybind11, or set PYTHON)" >&2; exit 1; }
GENERATOR=()
if command -v ninja >/dev/null 2>&1; then GENERATOR=(-G Ninja); fi
cmake -S . -B "$BUILD" "${GENERATOR[@]}" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DRNNKIT_BUILD_CPP_TESTS=ON -Dpybind11_DIR="$PYBIND11_DIR" \
  -DCMAKE_CXX_FLAGS="-fsanitize=thread -fno-omit-frame-pointer" \
  -DCMAKE_EXE_LINKER_FLAGS=-fsanitize=thread -DCMAKE_SHARED_LINKER_FLAGS=-fsanitize=thread
cmake --build "$BUILD" --target rnnkit_team_stress
# halt_on_error: the first race fails the run; second_deadlock_stack: full lock-order reports.
TSAN_OPTIONS="${TSAN_OPTIONS:-halt_on_error=1 second_deadlock_stack=1}" \
  "$BUILD/rnnkit_team_stress"
