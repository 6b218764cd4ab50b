#!/usr/bin/env bash
# The installed public headers keep their contract (tests/install/CMakeLists.txt sets PEERMQ_*;
# run after install.prefix):
#   - each one compiles on its own, included first in a file, with the package's flags;
#   - none brings in a ZeroMQ, Avahi or SQLite header;
#   - none but <peermq/msgpack.hpp> and the umbrella <peermq/peermq.hpp> brings in msgpack-c:
#     MessagePack typed payloads are opt-in (docs/design/public-headers.md).
# Prints the preprocessed size of node.hpp, msgpack.hpp and peermq.hpp for the record.
set -euo pipefail

for var in PEERMQ_WORK_DIR PEERMQ_INCLUDEDIR PEERMQ_CXX; do
    [[ -n ${!var:-} ]] || { echo "header check: $var is not set" >&2; exit 2; }
done
include_dir=$PEERMQ_WORK_DIR/prefix/$PEERMQ_INCLUDEDIR
[[ -d $include_dir/peermq ]] || {
    echo "header check: FAIL: no headers in $include_dir (install.prefix runs first)" >&2
    exit 1
}
flags=(-std=c++20 -DMSGPACK_NO_BOOST -I"$include_dir")

failures=()
mapfile -t headers < <(cd "$include_dir" && find peermq -type f -name '*.hpp' | sort)
for header in "${headers[@]}"; do
    # -H lists every header the file opens, system ones included, one per line on stderr.
    if ! opened=$(printf '#include <%s>\n' "$header" |
        "$PEERMQ_CXX" "${flags[@]}" -fsyntax-only -H -x c++ - 2>&1); then
        failures+=("$header does not compile on its own:
$opened")
        continue
    fi
    opened=$(grep -E '^\.+ ' <<<"$opened" | sed 's/^\.* //')
    forbidden='(^|/)(zmq[^/]*\.h(pp)?|avahi-[a-z]+/|sqlite3\.h)'
    case $header in
    peermq/msgpack.hpp | peermq/peermq.hpp) ;;
    *) forbidden="$forbidden|(^|/)msgpack" ;;
    esac
    if found=$(grep -E "$forbidden" <<<"$opened"); then
        failures+=("$header brings in $(head -3 <<<"$found" | tr '\n' ' ')")
    fi
done

for header in peermq/node.hpp peermq/msgpack.hpp peermq/peermq.hpp; do
    lines=$(printf '#include <%s>\n' "$header" | "$PEERMQ_CXX" "${flags[@]}" -E -x c++ - | wc -l)
    echo "$header: $lines lines preprocessed"
done

if ((${#failures[@]})); then
    printf 'header check: FAIL: %s\n' "${failures[@]}" >&2
    exit 1
fi
echo "${#headers[@]} installed headers compile on their own; msgpack-c only behind peermq/msgpack.hpp"
