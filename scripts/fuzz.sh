#!/usr/bin/env bash
# Runs every fuzzer of the module (func FuzzX in a _test.go file) for
# $1 (a go test -fuzztime value, e.g. 10s or 1h). go test -fuzz takes one
# fuzzer of one package at a time; FUZZJOBS=N runs N of them at once, each
# with one worker (-parallel 1), and prints each one's last progress line
# (elapsed time and executions) when all are done. Any failure fails the
# script, after the others finished.
set -euo pipefail
fuzztime=${1:?usage: scripts/fuzz.sh FUZZTIME}
go=${GO:-go}
jobs=${FUZZJOBS:-1}
# Minimizing a new interesting input takes up to 60s by default, which a
# short run spends on one large seed (a SavedModel proto) instead of fuzzing.
minimize=${FUZZMINIMIZETIME:-2s}
cd "$(dirname "$0")/.."

targets=()
for f in $(git grep -h -o '^func Fuzz[A-Za-z0-9_]*' -- '*_test.go' | sed 's/^func //' | sort -u); do
  for file in $(git grep -l "^func $f(" -- '*_test.go'); do
    targets+=("$f ./$(dirname "$file")")
  done
done

if [ "$jobs" -le 1 ]; then
  for t in "${targets[@]}"; do
    read -r f pkg <<<"$t"
    echo "$go test -run '^\$' -fuzz '^$f\$' -fuzztime $fuzztime -fuzzminimizetime $minimize $pkg"
    "$go" test -run '^$' -fuzz "^$f\$" -fuzztime "$fuzztime" -fuzzminimizetime "$minimize" "$pkg"
  done
  exit 0
fi

logs=$(mktemp -d)
trap 'rm -rf "$logs"' EXIT
run_one() {
  local f=$1 pkg=$2 log="$logs/$1.log"
  if "$go" test -run '^$' -fuzz "^$f\$" -fuzztime "$fuzztime" -fuzzminimizetime "$minimize" -parallel 1 "$pkg" >"$log" 2>&1; then
    echo "ok   $f $pkg: $(grep -o 'elapsed: [^,]*, execs: [0-9]*' "$log" | tail -1 || echo "no progress line")"
  else
    echo "FAIL $f $pkg (log follows)"
    sed 's/^/    /' "$log"
    return 1
  fi
}
export -f run_one
export go fuzztime minimize logs
printf '%s\n' "${targets[@]}" | xargs -P "$jobs" -L 1 bash -c 'run_one "$0" "$1"'
