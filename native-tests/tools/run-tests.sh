#!/bin/sh
# run-tests.sh BUILD_DIR
#
# Runs the native test binary in each emulator configuration (deterministic, shuffled with
# several workers, AddressSanitizer), then the JNI link check when JCuda's native libraries
# were found, and prints one line: `native-tests: N passed, M failed`. Full logs stay in
# BUILD_DIR/test-*.log; failures are echoed.
set -u
build=$1
passed=0
failed=0

count() {  # count LABEL PASSED FAILED
    passed=$((passed + $2))
    failed=$((failed + $3))
}

run_config() {  # run_config LABEL BINARY [NAME=VALUE...]
    label=$1
    binary=$2
    shift 2
    log="$build/test-$label.log"
    env KXAI_TEST_CONFIG="$label" KXAI_TEST_PTX_DIR="$build/ptx" "$@" "$binary" > "$log" 2>&1
    status=$?
    summary=$(grep "^native-tests\[$label\]:" "$log" | tail -n 1)
    if [ -z "$summary" ]; then
        echo "native-tests[$label]: no summary (exit status $status); last lines of $log:"
        tail -n 30 "$log"
        count "$label" 0 1
        return
    fi
    echo "$summary"
    grep -E '^(FAIL|    )' "$log" | head -n 60
    p=$(echo "$summary" | sed 's/.*: \([0-9]*\) passed.*/\1/')
    f=$(echo "$summary" | sed 's/.* \([0-9]*\) failed.*/\1/')
    count "$label" "$p" "$f"
    if [ "$status" -ne 0 ] && [ "$f" -eq 0 ]; then
        echo "native-tests[$label]: exit status $status after the summary (see $log)"
        count "$label" 0 1
    fi
}

run_config deterministic "$build/kxai_native_tests" KXAI_EMU_SCHEDULE=deterministic
run_config shuffled "$build/kxai_native_tests" KXAI_EMU_SCHEDULE=shuffled KXAI_EMU_SEED=20240601 KXAI_EMU_WORKERS=3
run_config asan "$build/asan/kxai_native_tests" KXAI_EMU_SCHEDULE=deterministic

jni_libs=$(ls "$build"/jcuda/libJCudaDriver-*.so "$build"/jcuda/libJCublas2-*.so 2>/dev/null)
if [ -n "$jni_libs" ]; then
    for mode in library-path preload; do
        log="$build/test-jni-link-$mode.log"
        # shellcheck disable=SC2086
        if [ $mode = preload ]; then
            env -u LD_LIBRARY_PATH "$build/jni_link_check" --preload "$build" $jni_libs > "$log" 2>&1
        else
            env LD_LIBRARY_PATH="$build" LD_BIND_NOW=1 "$build/jni_link_check" "$build" $jni_libs > "$log" 2>&1
        fi
        grep -v '^ok' "$log" | sed "s/^jni-link-check:/jni-link-check[$mode]:/"
        summary=$(grep '^jni-link-check:' "$log" | tail -n 1)
        if [ -n "$summary" ]; then
            count jni "$(echo "$summary" | sed 's/.*: \([0-9]*\) passed.*/\1/')" \
                "$(echo "$summary" | sed 's/.* \([0-9]*\) failed.*/\1/')"
        else
            count jni 0 1
        fi
    done
else
    echo "jni-link-check: skipped (no JCuda natives jar under \$M2_REPO; see native-tests/README.md)"
fi

echo "native-tests: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
