#!/usr/bin/env bash
# run_fuzzer.sh BINARY CORPUS_DIR WORK_DIR SECONDS [LIBFUZZER_ARGS...]
# Runs one libFuzzer target for SECONDS on top of CORPUS_DIR, which it only
# reads: new inputs go to WORK_DIR/new (emptied first), crash inputs to
# WORK_DIR/. Prints a closing line and exits non-zero on any finding.
set -uo pipefail
bin=$1 corpus=$2 work=$3 seconds=$4
shift 4
name=$(basename "$bin")
rm -rf "$work"
mkdir -p "$work/new"
log=$work/log
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
rc=0
"$bin" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
  -print_final_stats=1 -artifact_prefix="$work/" "$@" \
  "$work/new" "$corpus" >"$log" 2>&1 || rc=$?
runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
cov=$(grep -oE 'cov: [0-9]+' "$log" | tail -1)
# The closing line goes to stdout and to WORK_DIR/result (scripts/test
# repeats it in its summary).
if ((rc == 0)); then
  echo "$name: OK, ${runs:-?} runs in ${seconds}s, ${cov:-cov: ?}, $(ls "$work/new" | wc -l) new inputs (not kept)" |
    tee "$work/result"
  exit 0
fi
tail -n 60 "$log"
artifact=$(ls "$work" | grep -E '^(crash|leak|timeout|oom|slow-unit)-' | head -1)
echo "$name: FAILED (exit $rc)${artifact:+, input: $work/$artifact (reproduce: $bin $work/$artifact)}" |
  tee "$work/result"
exit 1
