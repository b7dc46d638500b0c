#!/usr/bin/env bash
# Runs every fuzz target (func FuzzXxx in a _test.go file) of the main module, one after another,
# each for FUZZTIME (default 30s). A failing input is saved under the package's testdata/fuzz/.
#
#   scripts/fuzz.sh                 (or: make fuzz)
#   FUZZTIME=10m scripts/fuzz.sh
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

fuzztime="${FUZZTIME:-30s}"
targets=0
while IFS= read -r file; do
	pkg="./$(dirname "$file")"
	while IFS= read -r name; do
		targets=$((targets + 1))
		printf 'fuzz: %s %s for %s\n' "$pkg" "$name" "$fuzztime" >&2
		go test -run='^$' -fuzz="^$name\$" -fuzztime="$fuzztime" "$pkg"
	done < <(sed -n 's/^func \(Fuzz[A-Za-z0-9_]*\)(.*/\1/p' "$file")
done < <(grep -rl --include='*_test.go' --exclude-dir=.git --exclude-dir=tools '^func Fuzz' . | sed 's|^\./||' | sort)

if ((targets == 0)); then
	printf 'fuzz: no fuzz targets found\n' >&2
	exit 1
fi
printf 'fuzz: %d targets ran for %s each without failure\n' "$targets" "$fuzztime" >&2
