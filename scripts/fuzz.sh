#!/usr/bin/env bash
# Fuzzes the input and checkpoint decoders with cargo-fuzz (libFuzzer) for a bounded time and prints the number of
# executions. cargo-fuzz is installed once into the cache; RUSTC_BOOTSTRAP lets the stable
# toolchain accept the sanitizer flags cargo-fuzz passes.
# Usage: scripts/fuzz.sh [SECONDS per target, default 60]
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
secs="${1:-60}"
fuzz_root="$TRENDCAST_CACHE/cargo-fuzz"
if [[ ! -x "$fuzz_root/bin/cargo-fuzz" ]]; then
  log "installing cargo-fuzz into $fuzz_root"
  cargo install cargo-fuzz --locked --root "$fuzz_root" >&2
fi
export PATH="$fuzz_root/bin:$PATH" RUSTC_BOOTSTRAP=1
cd "$TRENDCAST_ROOT/fuzz"
for target in decode_event decode_checkpoint; do
  mkdir -p "corpus/$target"
  out="$(cargo fuzz run "$target" "corpus/$target" "seeds/$target" -- -max_total_time="$secs" -max_len=4096 2>&1)" || {
    printf '%s\n' "$out" | tail -40 >&2
    log "fuzz target $target failed"
    exit 1
  }
  printf '%s\n' "$out" | grep -E '^Done [0-9]+ runs' | sed "s/^/$target: /"
done
