#!/usr/bin/env bash
# libFuzzer campaigns over segmentd's hostile-input surfaces (README "Fuzzing").
#
#   scripts/fuzz.sh [TARGET|all] [SECONDS]     TARGET: records, model, config, webhooks, snapshot (default all, 60 s each)
#   scripts/fuzz.sh repro TARGET FILE…         runs the target on FILEs (a reproducer) and shows the crash
#   scripts/fuzz.sh minimize TARGET FILE OUT   minimises a crashing FILE into OUT (-minimize_crash=1)
#
# Builds the fuzz package (Fuzz/Package.swift, in .build-fuzz) with -sanitize=fuzzer,address
# and runs each target for SECONDS with its seed corpus (Fuzz/corpus/TARGET), its committed
# regressions (Fuzz/regressions/TARGET, so every past finding is re-run first) and its
# dictionary (Fuzz/dict/TARGET.dict). New inputs go to Fuzz/findings/TARGET/corpus and crash,
# timeout and out-of-memory reproducers to Fuzz/findings/TARGET/ (git-ignored); the log of the
# last run is Fuzz/findings/TARGET/last.log. Exits non-zero when any target found something.
# Leak detection is off: LeakSanitizer misreads pointers Swift packs into enum payloads
# (the indirect enums of a model held in a global show as leaks at exit).
# FUZZ_FLAGS adds libFuzzer flags (e.g. FUZZ_FLAGS="-fork=1 -ignore_crashes=1" to go on
# after a crash); FUZZ_NO_BUILD=1 skips the build.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v swift >/dev/null 2>&1 || export PATH=/opt/swift/usr/bin:$PATH

all_targets=(records model config webhooks snapshot)
mode=fuzz
if [ "${1:-}" = repro ] || [ "${1:-}" = minimize ]; then
  mode=$1
  shift
  [ $# -ge 2 ] || { echo "usage: scripts/fuzz.sh $mode TARGET FILE…" >&2; exit 2; }
fi
target=${1:-all}
seconds=${2:-60}
[ "$mode" = fuzz ] || seconds=0
case "$target" in
  all) targets=("${all_targets[@]}") ;;
  records|model|config|webhooks|snapshot) targets=("$target") ;;
  *) echo "usage: scripts/fuzz.sh [records|model|config|webhooks|snapshot|all] [SECONDS]" >&2; exit 2 ;;
esac
[[ "$seconds" =~ ^[0-9]+$ ]] || { echo "fuzz.sh: SECONDS must be a whole number, not '$seconds'" >&2; exit 2; }

# libFuzzer, the sanitizer runtimes and lld ship with the Swift toolchain on Linux. lld is
# needed: GNU gold fails on these links (internal error in format_file_lineno).
swift_bin=$(dirname "$(command -v swift)")
resource=$(dirname "$swift_bin")/lib/clang
if [ "$(uname -s)" = Linux ]; then
  if ! ls "$resource"/*/lib/linux/libclang_rt.fuzzer-*.a >/dev/null 2>&1; then
    echo "fuzz.sh: libclang_rt.fuzzer not found under $resource (a Swift toolchain for Linux ships it)" >&2
    exit 1
  fi
  if ! command -v ld.lld >/dev/null 2>&1; then
    echo "fuzz.sh: ld.lld not found next to swift ($swift_bin) or on PATH" >&2
    exit 1
  fi
fi

module() {
  case "$1" in
    records) echo FuzzRecords ;; model) echo FuzzModel ;; config) echo FuzzConfig ;; webhooks) echo FuzzWebhooks ;; snapshot) echo FuzzSnapshot ;;
  esac
}
max_len() {
  case "$1" in
    records) echo 4096 ;; model) echo 8192 ;; config) echo 2048 ;; webhooks) echo 4096 ;; snapshot) echo 2048 ;;
  esac
}

# -O after the package's flags: overflow and bounds checks stay on in every module fuzzed
# (a target's -Ounchecked would hide overflows), whatever the release configuration says.
# --disable-build-manifest-caching: segmentd is a path dependency of the fuzz package, and a
# cached build plan does not see a source file added to it (the build then fails to find it).
build_flags=(-c release --package-path Fuzz --scratch-path .build-fuzz --disable-build-manifest-caching
  -Xswiftc -sanitize=fuzzer,address -Xswiftc -parse-as-library -Xswiftc -O
  -Xswiftc -Xclang-linker -Xswiftc -fuse-ld=lld)
if [ "${FUZZ_NO_BUILD:-0}" != 1 ]; then
  mkdir -p Fuzz/findings
  for t in "${targets[@]}"; do
    p=$(module "$t")
    echo "fuzz.sh: building $p (log Fuzz/findings/build.log)" >&2
    if ! swift build "${build_flags[@]}" --product "$p" >Fuzz/findings/build.log 2>&1; then
      grep -E "error:" Fuzz/findings/build.log >&2 || tail -30 Fuzz/findings/build.log >&2
      echo "fuzz.sh: build of $p failed" >&2
      exit 1
    fi
  done
fi
bin=$(swift build "${build_flags[@]}" --show-bin-path)

export SWIFT_BACKTRACE=enable=no
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=0}
common=(-max_len="$(max_len "$target")" -timeout=10 -rss_limit_mb=2048 -detect_leaks=0)
if [ "$mode" = repro ]; then
  shift
  exec "$bin/$(module "$target")" "${common[@]}" "$@"
fi
if [ "$mode" = minimize ]; then
  [ $# -eq 3 ] || { echo "usage: scripts/fuzz.sh minimize TARGET FILE OUT" >&2; exit 2; }
  "$bin/$(module "$target")" "${common[@]}" -minimize_crash=1 -max_total_time="${FUZZ_MINIMIZE_SECONDS:-120}" \
    -exact_artifact_path="$3" "$2" 2>&1 | grep -E "CRASH_MIN|ERROR|Fatal error" >&2 || true
  [ -f "$3" ] && echo "fuzz.sh: minimised $2 ($(wc -c <"$2") bytes) into $3 ($(wc -c <"$3") bytes)" >&2
  "$bin/$(module "$target")" "${common[@]}" "$3" 2>&1 | grep -m8 -E "ERROR|Fatal error|#[0-9]+ 0x.* in .*(Segmentd|Fuzz).*swift:[0-9]+" >&2 || true
  exit 0
fi
status=0
summary=()
for t in "${targets[@]}"; do
  out=Fuzz/findings/$t
  mkdir -p "$out/corpus" "Fuzz/regressions/$t"
  log=$out/last.log
  echo "fuzz.sh: $t for ${seconds}s (log $log)" >&2
  marker=$(mktemp)
  set +e
  # shellcheck disable=SC2086
  "$bin/$(module "$t")" "$out/corpus" "Fuzz/corpus/$t" "Fuzz/regressions/$t" \
    -dict="Fuzz/dict/$t.dict" -max_len="$(max_len "$t")" -max_total_time="$seconds" \
    -timeout=10 -rss_limit_mb=2048 -detect_leaks=0 -print_final_stats=1 -artifact_prefix="$out/" \
    ${FUZZ_FLAGS:-} >"$log" 2>&1
  rc=$?
  set -e
  # In fork mode with -ignore_crashes (and the like) libFuzzer goes on and exits 0: the
  # reproducers it wrote during the run are the findings.
  new=$(find "$out" -maxdepth 1 -newer "$marker" \( -name 'crash-*' -o -name 'oom-*' -o -name 'timeout-*' -o -name 'leak-*' \) | sort)
  rm -f "$marker"
  if [ $rc -eq 0 ] && [ -n "$new" ]; then rc=1; fi
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  # Fork mode (FUZZ_FLAGS=-fork=1 …) prints no final stats: its last "#N:" status line counts.
  [ -n "$execs" ] || execs=$(sed -n 's/^#\([0-9]*\): cov:.*/\1/p' "$log" | tail -1)
  secs=$(sed -n 's/^Done [0-9]* runs in \([0-9]*\) second.*/\1/p' "$log" | tail -1)
  if [ $rc -ne 0 ]; then
    status=1
    artifact=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -1)
    [ -n "$artifact" ] || artifact="$(echo "$new" | head -3 | tr '\n' ' ')($(echo "$new" | wc -l) in all)"
    reason=$(grep -a -m1 -E "Fatal error|fuzz invariant|ERROR: (AddressSanitizer|libFuzzer)|SUMMARY" "$log" || true)
    summary+=("$t: FINDING (exit $rc) after ${execs:-?} execs: ${reason:-see $log}; reproducer ${artifact:-none written}")
    grep -a -m20 -E "Fatal error|fuzz invariant|ERROR:|#[0-9]+ 0x.* in .*(Segmentd|Fuzz)" "$log" >&2 || tail -20 "$log" >&2
  else
    summary+=("$t: ok, ${execs:-?} execs in ${secs:-$seconds}s, corpus $(ls "$out/corpus" | wc -l) + $(ls "Fuzz/corpus/$t" | wc -l) seeds")
  fi
done
printf 'fuzz.sh: %s\n' "${summary[@]}"
exit $status
