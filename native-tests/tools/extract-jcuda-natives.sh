#!/bin/sh
# extract-jcuda-natives.sh DEST_DIR JAR...
#
# Copies the two JNI libraries the CUDA backend uses (libJCudaDriver, libJCublas2) out of
# JCuda's natives jars, when they exist (e.g. in ~/.m2 once the Java build has resolved them),
# so the build can list what they import and the tests can dlopen them. Missing jars, or no
# unzip/bsdtar/jar, are not errors: the checked-in symbol lists are used and the link check is
# skipped.
set -u
dest=$1
shift
mkdir -p "$dest"
for jar in "$@"; do
    [ -f "$jar" ] || continue
    for member in 'lib/libJCudaDriver-*.so' 'lib/libJCublas2-*.so'; do
        if command -v unzip > /dev/null 2>&1; then
            unzip -q -o -j -d "$dest" "$jar" "$member" > /dev/null 2>&1
        elif command -v bsdtar > /dev/null 2>&1; then
            bsdtar -x -f "$jar" -C "$dest" --strip-components 1 "$member" > /dev/null 2>&1
        elif command -v jar > /dev/null 2>&1; then
            # jar extracts everything; keep what is wanted.
            abs=$(cd "$(dirname "$jar")" && pwd)/$(basename "$jar")
            (cd "$dest" && jar xf "$abs" && mv $member . 2> /dev/null; rm -rf lib META-INF)
        else
            echo "note: no unzip, bsdtar or jar: JCuda natives not extracted" >&2
        fi
    done
done
touch "$dest/.extracted"
