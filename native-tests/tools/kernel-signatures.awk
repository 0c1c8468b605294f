# kernel-signatures.awk: list the kernels and dynamic shared arrays of CUDA sources.
#
# POSIX awk (Debian's default mawk included): the build must not need Python or gawk.
# Kernels are recognised as `extern "C" __global__ ...` starting a line (other text before the
# parameter list, such as __launch_bounds__(...), may follow on the same or later lines).
# Output, tab-separated, one record per line:
#   kernel  <name>  <signature without extern "C" __global__>  <param>;<param>;...
#   shared  <element type>  <name>          for every `extern __shared__ T name[]`
# A __global__ function that is not extern "C" is an error: its PTX name would be mangled and
# the fake driver binds PTX entries to CPU kernels by name.

function fail(msg) {
    printf("%s:%d: %s\n", FILENAME, FNR, msg) > "/dev/stderr"
    failed = 1
    exit 1
}

function trim(s) {
    gsub(/^[ \t]+|[ \t]+$/, "", s)
    return s
}

function emit_kernel(text,    name, params, lparen, rparen, n, parts, i, list) {
    sub(/^[ \t]*extern[ \t]+"C"[ \t]+__global__[ \t]+/, "", text)
    gsub(/__launch_bounds__[ \t]*\([^)]*\)/, "", text)
    gsub(/[ \t]+/, " ", text)
    lparen = index(text, "(")
    rparen = index(text, ")")
    if (lparen == 0 || rparen < lparen)
        fail("cannot read the parameter list of: " text)
    text = trim(substr(text, 1, rparen))
    name = substr(text, 1, index(text, "(") - 1)
    sub(/^.*[ *]/, "", name)
    params = substr(text, index(text, "(") + 1)
    sub(/\)$/, "", params)
    n = split(params, parts, ",")
    list = ""
    for (i = 1; i <= n; i++) {
        if (trim(parts[i]) == "" || trim(parts[i]) == "void")
            continue
        list = list (list == "" ? "" : ";") trim(parts[i])
    }
    printf("kernel\t%s\t%s\t%s\n", name, text, list)
    kernels++
}

{
    line = $0
    sub(/\/\/.*$/, "", line)
}

collecting {
    signature = signature " " line
    if (index(signature, ")") > 0) {
        probe = signature
        gsub(/__launch_bounds__[ \t]*\([^)]*\)/, "", probe)
        if (index(probe, ")") > 0) {
            emit_kernel(signature)
            collecting = 0
        }
    }
    next
}

line ~ /__global__/ {
    if (line !~ /^[ \t]*extern[ \t]+"C"[ \t]+__global__/)
        fail("kernels must be declared extern \"C\" __global__ at the start of a line")
    signature = line
    probe = signature
    gsub(/__launch_bounds__[ \t]*\([^)]*\)/, "", probe)
    if (index(probe, ")") > 0)
        emit_kernel(signature)
    else
        collecting = 1
    next
}

line ~ /extern[ \t]+__shared__/ {
    decl = line
    sub(/^.*extern[ \t]+__shared__[ \t]+/, "", decl)
    gsub(/__align__[ \t]*\([^)]*\)/, "", decl)
    bracket = index(decl, "[")
    if (bracket == 0)
        fail("extern __shared__ must declare an array: " line)
    decl = trim(substr(decl, 1, bracket - 1))
    name = decl
    sub(/^.*[ *]/, "", name)
    type = trim(substr(decl, 1, length(decl) - length(name)))
    printf("shared\t%s\t%s\n", type, name)
}

END {
    if (failed)
        exit 1
    if (collecting)
        fail("unterminated kernel signature")
}
