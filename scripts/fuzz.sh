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

# fuzz_one runs one fuzzer, its output to stdout. Go 1.26's fuzz
# coordinator can report "context deadline exceeded" as a failure when
# -fuzztime ends while a worker is mid-input (golang/go#75804, fixed in Go
# 1.27): a failure whose only message is that, with no failing input
# written, is that race, not a finding, and the fuzzer runs once more. Any
# other failure fails.
fuzz_one() {
  local f=$1 pkg=$2 out
  shift 2
  for attempt in 1 2; do
    if out=$("$go" test -run '^$' -fuzz "^$f\$" -fuzztime "$fuzztime" -fuzzminimizetime "$minimize" "$@" "$pkg" 2>&1); then
      printf '%s\n' "$out"
      return 0
    fi
    printf '%s\n' "$out"
    if [ "$attempt" = 2 ] || ! grep -q '^    context deadline exceeded$' <<<"$out" ||
      grep -q -e 'Failing input written' -e '^panic:' -e '_test.go:[0-9]*:' <<<"$out"; then
      return 1
    fi
    echo "fuzz: $f: the fuzz coordinator's deadline race (golang/go#75804), no failing input: running it again"
  done
}

if [ "$jobs" -le 1 ]; then
  for t in "${targets[@]}"; do
    read -r f pkg <<<"$t"
    echo "$go test -run '^\$' -fuzz '^$f\$' -fuzztime $fuzztime -fuzzminimizetime $minimize $pkg"
    fuzz_one "$f" "$pkg"
  done
  exit 0
fi

logs=$(mktemp -d)
trap 'rm -rf "$logs"' EXIT
run_one() {
  local f=$1 pkg=$2 log="$logs/$1.log"
  if fuzz_one "$f" "$pkg" -parallel 1 >"$log" 2>&1; then
    echo "ok   $f $pkg: $(grep -o 'elapsed: [^,]*, execs: [0-9]*' "$log" | tail -1 || echo "no progress line")"
  else
    echo "FAIL $f $pkg (log follows)"
    sed 's/^/    /' "$log"
    return 1
  fi
}
export -f run_one fuzz_one
export go fuzztime minimize logs
printf '%s\n' "${targets[@]}" | xargs -P "$jobs" -L 1 bash -c 'run_one "$0" "$1"'
