#!/usr/bin/env bash
# Soak: 32 threads on one shared CPU model, mixed methods and batch sizes, every result checked bit
# for bit against the sequential run (dev.kxai.soak.SoakTest; 15 s inside mvn verify).
#   bench/soak.sh [SECONDS=600]
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-600}
mvn -o -B -q test-compile >/dev/null || mvn -B -q test-compile
mvn -o -B surefire:test -Dtest=SoakTest -Dsurefire.failIfNoSpecifiedTests=false -Dkxai.soak.seconds="$secs" \
    | grep -E '^soak:|Tests run:|FAIL|mismatch' 
