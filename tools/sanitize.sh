#!/usr/bin/env bash
# Build rnnkit's extension with AddressSanitizer + UndefinedBehaviorSanitizer (GCC) into its
# own virtualenv and run tests against it inside CPython.
#
#   tools/sanitize.sh                      # the kernel-facing subset (see DEFAULT_TESTS)
#   tools/sanitize.sh --all                # the whole test suite (slow: ~10x under ASan)
#   tools/sanitize.sh tests/test_x.py -k y # any pytest arguments
#
# Environment: SANITIZE_VENV (default build/venv-sanitize), SANITIZE_BUILD_DIR (default
# build/sanitize), PYTHON (default python3). Needs gcc/g++ with libasan and libubsan.
#
# The interpreter itself is not instrumented, so libasan and libubsan are LD_PRELOADed.
# detect_leaks=0: CPython keeps objects alive until exit by design, LeakSanitizer would
# report them all. Any ASan error or UB report aborts the run with a stack trace.
set -euo pipefail
cd "$(dirname "$0")/.."

DEFAULT_TESTS=(
  tests/test_ops_vs_reference.py   # every kernel x dtype x layout vs the NumPy reference
  tests/test_validation.py         # bad shapes/dtypes/strides reaching the bindings
  tests/test_fixtures.py           # Keras fixtures, masks, go_backwards on every ISA
  tests/test_threads_and_isa.py    # thread counts, ISA switching, subprocesses
  tests/test_activations_ops.py    # every activation, both roles, every ISA, f32/f64
  tests/test_activation_fixtures.py  # Keras recordings of every activation
)
[ -f tests/test_hostile_inputs.py ] && DEFAULT_TESTS+=(tests/test_hostile_inputs.py)

if [ "$#" -eq 0 ]; then
  set -- "${DEFAULT_TESTS[@]}"
elif [ "$1" = "--all" ]; then
  shift
  set -- tests "$@"
fi

PYTHON=${PYTHON:-python3}
VENV=${SANITIZE_VENV:-build/venv-sanitize}
BUILD_DIR=${SANITIZE_BUILD_DIR:-build/sanitize}
SAN_FLAGS="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined -g"

log() { printf '\n[sanitize %(%H:%M:%S)T] %s\n' -1 "$*"; }

log "venv $VENV"
[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
"$VENV/bin/python" -m pip install -q scikit-build-core pybind11 numpy pytest hypothesis pytest-benchmark

# Debug (-g, asserts on) with the kernels at -O1: instrumented -O3 builds of the three
# per-ISA kernel copies take over ten minutes on two cores; -O1 keeps them a few minutes.
log "build with $SAN_FLAGS (g++, Debug, kernels -O1, build dir $BUILD_DIR)"
CC=gcc CXX=g++ "$VENV/bin/python" -m pip install -q --no-build-isolation --force-reinstall --no-deps . \
  -C "build-dir=$BUILD_DIR" \
  -C cmake.build-type=Debug \
  -C cmake.define.RNNKIT_KERNEL_OPT=-O1 \
  -C "cmake.define.CMAKE_CXX_FLAGS=$SAN_FLAGS" \
  -C "cmake.define.CMAKE_SHARED_LINKER_FLAGS=-fsanitize=address,undefined" \
  -C "cmake.define.CMAKE_MODULE_LINKER_FLAGS=-fsanitize=address,undefined"

libasan=$(gcc -print-file-name=libasan.so)
libubsan=$(gcc -print-file-name=libubsan.so)
for lib in "$libasan" "$libubsan"; do
  [ -f "$lib" ] || { echo "sanitize.sh: $lib not found (install gcc's libasan/libubsan)" >&2; exit 2; }
done

log "pytest $*"
# Run from outside the source tree is not needed: tests import the installed rnnkit.
env LD_PRELOAD="$libasan $libubsan" \
  ASAN_OPTIONS="detect_leaks=0:allocator_may_return_null=1:abort_on_error=1:strict_string_checks=1:detect_stack_use_after_return=1:check_initialization_order=1" \
  UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1" \
  PYTHONMALLOC=malloc \
  "$VENV/bin/python" -X faulthandler -m pytest -q -p no:cacheprovider "$@"
log "no sanitizer reports"
