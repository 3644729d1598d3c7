#!/usr/bin/env bash
# The whole suite: first the static checks (`deno task check`, `lint`, `fmt`: a type error
# anywhere, tests included, fails the run), then bun:test over every *_test.ts (simulations
# beside the in-process unit tests, then the tests with real processes alone), then Deno runs
# of the demo and examples. Each static check and each Deno run counts as one test in
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

# Adds the pass/fail counts of one bun test log to the totals.
count_bun() {
  local bp bf be
  bp=$(grep -Eo '^ *[0-9]+ pass' "$1" | tail -1 | grep -Eo '[0-9]+' || echo 0)
  bf=$(grep -Eo '^ *[0-9]+ fail' "$1" | tail -1 | grep -Eo '[0-9]+' || echo 0)
  be=$(grep -Eo '^ *[0-9]+ errors?' "$1" | tail -1 | grep -Eo '[0-9]+' || echo 0)
  bf=$((bf + be)) # errors between tests (unhandled rejections) count as failures
  if ! grep -Eq '^ *[0-9]+ pass' "$1"; then bf=$((bf + 1)); echo "bun test produced no summary"; fi
  passed=$((passed + bp)); failed=$((failed + bf))
}

if [ "$#" -gt 0 ]; then
  echo "== bun test $*"
  bun test --timeout 120000 "$@" 2>&1 | tee "$log"
  count_bun "$log"
else
  # The seeded simulations (virtual time, one core each) run beside the in-process unit
  # tests; everything with real processes, sockets, WebRTC, browsers or namespaces runs
  # after them, alone, since its timing is what the machine's load would disturb.
  sims=(); pure=(); real=()
  while IFS= read -r f; do
    case "$f" in
      test/sim/*) sims+=("./$f") ;;
      *process* | test/nat/* | *transport_* | *signaling_* | *runtime* | *browser* | *demo_test* | *examples_test* | \
        *resource_limits* | *hostile_peer* | *fuzz*) real+=("./$f") ;;
      *) if grep -qE "startMember|spawn|child_process|chromium|netns|Bun\.serve|Deno\.serve|WebRtcTransport" "$f"; then
        real+=("./$f")
      else pure+=("./$f"); fi ;;
    esac
  done < <(find test -name '*_test.ts' | sort)
  simlog=$(mktemp)
  echo "== bun test: ${#sims[@]} simulation files (beside the next group; output below when done)"
  bun test --timeout 120000 "${sims[@]}" >"$simlog" 2>&1 &
  simpid=$!
  echo "== bun test: ${#pure[@]} in-process unit test files"
  bun test --timeout 120000 "${pure[@]}" 2>&1 | tee "$log"
  count_bun "$log"
  wait "$simpid"
  echo "== bun test: the simulation files"
  cat "$simlog"
  count_bun "$simlog"
  rm -f "$simlog"
  echo "== bun test: ${#real[@]} files with real processes, sockets and networks"
  bun test --timeout 120000 "${real[@]}" 2>&1 | tee "$log"
  count_bun "$log"
fi

if [ "$#" -eq 0 ]; then
  for t in test/deno/*.ts; do
    [ -e "$t" ] || continue
    deno_check "deno run $t" timeout 300 deno run -A "$t"
  done
fi
rm -f "$log"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
