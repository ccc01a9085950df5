#!/usr/bin/env bash
# Runs every fuzzer of the module (func FuzzX in a _test.go file) for
# $1 (a go test -fuzztime value, e.g. 10s or 1h), one after the other:
# go test -fuzz takes one fuzzer of one package at a time.
set -euo pipefail
fuzztime=${1:?usage: scripts/fuzz.sh FUZZTIME}
go=${GO:-go}
cd "$(dirname "$0")/.."
for f in $(git grep -h -o '^func Fuzz[A-Za-z0-9_]*' -- '*_test.go' | sed 's/^func //' | sort -u); do
  for file in $(git grep -l "^func $f(" -- '*_test.go'); do
    pkg=./$(dirname "$file")
    echo "$go test -run '^\$' -fuzz '^$f\$' -fuzztime $fuzztime $pkg"
    "$go" test -run '^$' -fuzz "^$f\$" -fuzztime "$fuzztime" "$pkg"
  done
done
