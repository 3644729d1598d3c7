#!/usr/bin/env bash
# The whole suite: first the static checks (`deno task check`, `lint`, `fmt`: a type error
# anywhere, tests included, fails the run), then bun:test over every *_test.ts, then Deno
# runs of the demo and examples. Each static check and each Deno run counts as one test in
# the final "N passed, N failed" line. With arguments (test files for bun test) only bun
# test runs; SHOAL_SKIP_STATIC=1 skips the static checks (`deno task ok` has run them).
set -u
cd "$(dirname "$0")/.."
export PATH="$PWD/node_modules/.bin:$PATH"
passed=0
failed=0
log=$(mktemp)

deno_check() {
  local name="$1"; shift
  echo "== deno: $name"
  if "$@" >"$log" 2>&1; then passed=$((passed + 1)); echo "ok   $name"; else failed=$((failed + 1)); echo "FAIL $name"; tail -40 "$log"; fi
}

if [ "$#" -eq 0 ] && [ -z "${SHOAL_SKIP_STATIC:-}" ]; then
  for task in check lint fmt; do deno_check "deno task $task" deno task "$task"; done
fi

echo "== bun test"
bun test --timeout 120000 "$@" 2>&1 | tee "$log"
bp=$(grep -Eo '^ *[0-9]+ pass' "$log" | tail -1 | grep -Eo '[0-9]+' || echo 0)
bf=$(grep -Eo '^ *[0-9]+ fail' "$log" | tail -1 | grep -Eo '[0-9]+' || echo 0)
be=$(grep -Eo '^ *[0-9]+ errors?' "$log" | tail -1 | grep -Eo '[0-9]+' || echo 0)
bf=$((bf + be)) # errors between tests (unhandled rejections) count as failures
if ! grep -Eq '^ *[0-9]+ pass' "$log"; then bf=$((bf + 1)); echo "bun test produced no summary"; fi
passed=$((passed + bp)); failed=$((failed + bf))

if [ "$#" -eq 0 ]; then
  for t in test/deno/*.ts; do
    [ -e "$t" ] || continue
    deno_check "deno run $t" timeout 300 deno run -A "$t"
  done
fi
rm -f "$log"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
