#!/usr/bin/env bash
# Runs every fuzz target (or the ones named) for a bounded time and reports, per target, the
# executions and the findings; exits non-zero if any target found something.
#
#   tests/fuzz/run.sh [SECONDS_PER_TARGET] [TARGET...]      (default: 30 seconds, every target)
#
# Engines (FUZZ_ENGINES, default "proptest"):
#   proptest  tests/fuzz.rs in release mode, FUZZ_SECONDS per target (always available);
#   afl       AFL++ through cargo-afl on the same checks (tests/fuzz/afl), coverage-guided, on
#             stable Rust; needs `cargo install cargo-afl && cargo afl config --build` once,
#             and a first build that instruments every dependency (long on 2 cores);
#   both      one after the other, SECONDS_PER_TARGET each.
# Output of each run: $CARGO_TARGET_DIR/fuzz-runs/ (AFL++ crashes under afl/<target>/default/crashes).
set -uo pipefail
cd "$(dirname "$0")/../.."

seconds="${1:-30}"
shift || true
all_targets=(robots ai_txt tdmrep content_usage content_signal robots_tag html_head rsl registry_import config
    config_env target note receipt tile_path)
targets=("$@")
((${#targets[@]})) || targets=("${all_targets[@]}")
engines="${FUZZ_ENGINES:-proptest}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
runs="$CARGO_TARGET_DIR/fuzz-runs"
mkdir -p "$runs"

failed=0
report=()

run_proptest() {
    echo "== proptest: building tests/fuzz.rs (release)"
    cargo test --release --test fuzz --no-run --quiet || exit 1
    for target in "${targets[@]}"; do
        local log="$runs/proptest-$target.log"
        FUZZ_SECONDS="$seconds" cargo test --release --quiet --test fuzz -- --exact "fuzz_$target" --nocapture \
            >"$log" 2>&1
        local status=$?
        local line
        line=$(grep -m1 "^FUZZ $target:" "$log")
        if ((status == 0)) && [[ -n "$line" ]]; then
            report+=("proptest  ${line#FUZZ }")
        else
            failed=1
            report+=("proptest  $target: FAILED, see $log")
            grep -m1 -A30 "^FINDING" "$log" | sed 's/^/    /'
        fi
        echo "${report[-1]}"
    done
}

run_afl() {
    if ! cargo afl --version >/dev/null 2>&1; then
        echo "== afl: cargo-afl is not installed (cargo install cargo-afl && cargo afl config --build); skipped"
        return
    fi
    local afl_target="$CARGO_TARGET_DIR/fuzz-afl"
    echo "== afl: building tests/fuzz/afl (instrumented, release)"
    (cd tests/fuzz/afl && CARGO_TARGET_DIR="$afl_target" cargo afl build --release --quiet) || exit 1
    local bin="$afl_target/release/consentry-fuzz-afl"
    for target in "${targets[@]}"; do
        local out="$runs/afl/$target"
        rm -rf "$out"
        mkdir -p "$out"
        AFL_NO_UI=1 AFL_SKIP_CPUFREQ=1 AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1 AFL_QUIET=1 \
            cargo afl fuzz -V "$seconds" -i "tests/fuzz/corpus/$target" -o "$out" -- "$bin" "$target" \
            >"$out.log" 2>&1
        local stats="$out/default/fuzzer_stats"
        if [[ ! -f "$stats" ]]; then
            failed=1
            report+=("afl       $target: did not run, see $out.log")
        else
            local execs crashes paths
            execs=$(awk -F' *: *' '$1=="execs_done"{print $2}' "$stats")
            crashes=$(awk -F' *: *' '$1=="saved_crashes"{print $2}' "$stats")
            paths=$(awk -F' *: *' '$1=="corpus_count"{print $2}' "$stats")
            report+=("afl       $target: $execs executions in ${seconds}s ($paths corpus entries), $crashes findings")
            if [[ "$crashes" != "0" ]]; then
                failed=1
                ls "$out/default/crashes" | sed 's/^/    /'
            fi
        fi
        echo "${report[-1]}"
    done
}

case "$engines" in
    proptest) run_proptest ;;
    afl) run_afl ;;
    both) run_proptest; run_afl ;;
    *) echo "FUZZ_ENGINES must be proptest, afl or both" >&2; exit 2 ;;
esac

echo
echo "== summary (${seconds}s per target)"
printf '%s\n' "${report[@]}"
exit "$failed"
