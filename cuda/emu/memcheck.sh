#!/usr/bin/env bash
# memcheck.sh: compute-sanitizer's memcheck for the emulated device, for
# scripts/gpu-check.sh --sanitizer on machines without a GPU (make
# test-gpu-check). It takes the same arguments,
#
#   memcheck.sh --tool memcheck --error-exitcode N CMD...
#
# runs CMD on the checked build of the emulated device (AddressSanitizer
# on every kernel access, with the barrier, shuffle and race checkers), and
# ends with a summary line in compute-sanitizer's words: "ERROR SUMMARY: 0
# errors" when CMD succeeds, else "ERROR SUMMARY: 1 error" and status N.
set -uo pipefail
code=1
while [ $# -gt 0 ]; do
	case $1 in
	--tool) [ "$2" = memcheck ] || { echo "memcheck.sh: only --tool memcheck" >&2; exit 2; }; shift 2 ;;
	--error-exitcode) code=$2 && shift 2 ;;
	--*) shift ;;
	*) break ;;
	esac
done
EMU=${QM_EMU_CHECKED:-$(cd "$(dirname "$0")/../.." && pwd)/build/emu/checked}
[ -e "$EMU/libcuda.so.1" ] || { echo "memcheck.sh: $EMU/libcuda.so.1 missing: run 'make emu'" >&2; exit 2; }
ASAN_OPTIONS=detect_leaks=0:handle_segv=0:allow_user_segv_handler=1:abort_on_error=1 \
	LD_PRELOAD=$(gcc -print-file-name=libasan.so) LD_LIBRARY_PATH=$EMU${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH} "$@"
rc=$?
if [ $rc = 0 ]; then
	echo "========= ERROR SUMMARY: 0 errors"
	exit 0
fi
echo "========= ERROR SUMMARY: 1 error (exit $rc)"
exit "$code"
