#!/usr/bin/env bash
# Coverage-guided fuzzing (Jazzer) of kxai's input decoders, a longer run than mvn verify's.
#   bench/fuzz.sh [SECONDS_PER_TARGET=600] [TARGET ...]
# Targets: dev.kxai.onnx.OnnxImporterFuzzTest (raw bytes), dev.kxai.onnx.OnnxStructureFuzzTest
# (protobuf-level edits of seed models), dev.kxai.io.NpyFuzzTest, dev.kxai.serve.RequestFuzzTest.
# Each runs in its own JVM (Jazzer fuzzes one test per process). The generated corpus grows under
# .cifuzz-corpus/ (ignored by git); a finding is written as crash-* beside the committed seeds
# (src/test/resources/<package>/<Class>Inputs/<method>/), where every later `mvn test` replays it:
# fix the bug, keep the file. Each input has 10 s (@Timeout, passed to libFuzzer; JUnit's own timeout
# is turned off here, it would time the whole run). Prints per target: executions, coverage (libFuzzer's cov/ft), result.
set -uo pipefail
cd "$(dirname "$0")/.."
secs=${1:-600}
shift || true
targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=(OnnxImporterFuzzTest OnnxStructureFuzzTest NpyFuzzTest RequestFuzzTest)
mvn -o -B -q test-compile >/dev/null || mvn -B -q test-compile || exit 1
mkdir -p target/fuzz
status=0
for t in "${targets[@]}"; do
    t=${t##*.}
    log=target/fuzz/$t.log
    JAZZER_FUZZ=1 mvn -o -B surefire:test -Dtest="$t" -Dsurefire.failIfNoSpecifiedTests=false \
        -Djazzer.max_duration="${secs}s" -Djunit.jupiter.execution.timeout.mode=disabled >"$log" 2>&1
    rc=$?
    done_line=$(grep -E '^#[0-9]+[[:space:]]+DONE' "$log" | tail -1)
    [ -z "$done_line" ] && done_line=$(grep -E '^#[0-9]+' "$log" | tail -1)
    printf '%-24s rc=%d  %s\n' "$t" "$rc" "$done_line"
    if [ $rc -ne 0 ]; then
        status=1
        grep -E 'FuzzTestFinding|Caused by|Test unit written' "$log" | head -5
    fi
done
exit $status
