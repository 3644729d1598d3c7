#!/usr/bin/env bash
# The whole suite: first the static checks (`deno task check`, `lint`, `fmt`: a type error
# anywhere, tests included, fails the run), then bun:test over every *_test.ts (the
# simulations in two halves side by side, the in-process unit tests, then the tests with real
# processes alone), then Deno runs of the demo and examples. Each static check and each Deno run counts as one test in
# the final "N passed, N failed" line. With arguments (test files for bun test) only bun
# test runs; SHOAL_SKIP_STATIC=1 skips the static checks (`deno task ok` has run them).
set -u
cd "$(dirname "$0")/.."
export PATH="$PWD/node_modules/.bin:$PATH"
passed=0
failed=0
log=$(mktemp)

# Each phase's wall time, so that the suite's time (CI allows 20 minutes) shows where it goes.
phase_start=$SECONDS
took() { echo "   (took $((SECONDS - phase_start)) s; $SECONDS s in all)"; phase_start=$SECONDS; }

deno_check() {
  local name="$1"; shift
  echo "== deno: $name"
  if "$@" >"$log" 2>&1; then passed=$((passed + 1)); echo "ok   $name"; else failed=$((failed + 1)); echo "FAIL $name"; tail -40 "$log"; fi
  took
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
  # The seeded simulations (virtual time: the machine's load cannot change their outcome)
  # run in two halves side by side, then the in-process unit tests; everything with real
  # processes, sockets, WebRTC, browsers or namespaces runs after them, alone, since its
  # timing is what the machine's load would disturb.
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
  # Two halves of the simulations, one per core, then the unit tests.
  simsA=(); simsB=()
  for i in "${!sims[@]}"; do if ((i % 2 == 0)); then simsA+=("${sims[$i]}"); else simsB+=("${sims[$i]}"); fi; done
  simlogA=$(mktemp)
  simlogB=$(mktemp)
  echo "== bun test: ${#sims[@]} simulation files in two halves side by side (output below when done)"
  bun test --timeout 120000 "${simsA[@]}" >"$simlogA" 2>&1 &
  pidA=$!
  bun test --timeout 120000 "${simsB[@]}" >"$simlogB" 2>&1 &
  pidB=$!
  wait "$pidA" "$pidB"
  for f in "$simlogA" "$simlogB"; do
    cat "$f"
    count_bun "$f"
  done
  rm -f "$simlogA" "$simlogB"
  took
  echo "== bun test: ${#pure[@]} in-process unit test files"
  bun test --timeout 120000 "${pure[@]}" 2>&1 | tee "$log"
  count_bun "$log"
  took
  echo "== bun test: ${#real[@]} files with real processes, sockets and networks"
  bun test --timeout 120000 "${real[@]}" 2>&1 | tee "$log"
  count_bun "$log"
  took
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
