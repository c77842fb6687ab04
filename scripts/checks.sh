#!/usr/bin/env bash
# The static checks side by side: the type check, ESLint and Prettier are each single-threaded, so together they take
# the time of the slowest instead of the sum. Each one's output is printed whole once it ends; fails if any fails.
set -uo pipefail
cd "$(dirname "$0")/.."
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
declare -A pids=()
npx tsc --noEmit >"$out/typecheck" 2>&1 & pids[typecheck]=$!
npx eslint . >"$out/eslint" 2>&1 & pids[eslint]=$!
npx prettier --check . >"$out/prettier" 2>&1 & pids[prettier]=$!
failed=()
for name in typecheck eslint prettier; do
  if wait "${pids[$name]}"; then
    echo "checks: $name passed"
  else
    failed+=("$name")
    echo "checks: $name FAILED:"
    cat "$out/$name"
  fi
done
[ ${#failed[@]} -eq 0 ] || { echo "checks failed: ${failed[*]}"; exit 1; }
