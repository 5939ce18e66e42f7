#!/usr/bin/env bash
# Builds the libFuzzer targets with clang (ASan + UBSan), each with the sources it fuzzes
# compiled in so they are coverage-instrumented, and runs each for a short time from its
# seed corpus. Binaries are cached by a hash of their sources. Usage: fuzz-smoke.sh [SECONDS]
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
seconds=${1:-20}
cache=${BOXLITE_CACHE:-$HOME/.cache/boxlite}/fuzz
mkdir -p "$cache"
cxx=${CXX_FUZZ:-clang++-14}
flags=(-std=c++20 -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined
       -I"$here" -I"$here/include")
base=(src/base/status.cc src/base/strings.cc src/base/log.cc)
sys=(src/sys/errno_status.cc src/sys/fs.cc src/sys/subprocess.cc src/sys/file_lock.cc)
declare -A sources libs
sources[frame_decoder]="${base[*]} src/protocol/frame.cc src/protocol/messages.cc"
sources[image_reference]="${base[*]} src/image/reference.cc"
sources[oci_manifest]="${base[*]} ${sys[*]} src/base/base64.cc src/image/manifest.cc src/image/auth.cc src/image/reference.cc"
sources[tar_unpack]="${base[*]} ${sys[*]} src/base/sha256.cc $(cd "$here" && ls src/image/ext4_builder.cc src/image/layer_stream.cc src/image/tar_path.cc src/image/layer_size.cc | tr '\n' ' ')"
# Every agent source but its main() and tests, so a new agent file is never missed.
sources[agent_request]="${base[*]} ${sys[*]} src/protocol/frame.cc src/protocol/messages.cc src/protocol/capabilities.cc $(cd "$here" && ls agent/*.cc | grep -v -e _test.cc -e /main.cc | tr '\n' ' ')"
libs[frame_decoder]="-lcrypto"
libs[image_reference]=""
libs[oci_manifest]="-lcrypto"
libs[tar_unpack]="-lext2fs -lcom_err -larchive -lz -lzstd -lcrypto"
libs[agent_request]="-lcrypto"
names=(frame_decoder image_reference oci_manifest tar_unpack agent_request)
bins=()
for name in "${names[@]}"; do
  srcs=(fuzz/${name}_fuzzer.cc ${sources[$name]})
  key=$(cd "$here" && cat "${srcs[@]}" $(ls src/*/*.h agent/*.h include/boxlite/*.h) | sha256sum | cut -c1-16)
  bin=$cache/${name}-$key
  if [ ! -x "$bin" ]; then
    echo "fuzz: building $name" >&2
    (cd "$here" && $cxx "${flags[@]}" "${srcs[@]}" -o "$bin.tmp" ${libs[$name]} -lpthread)
    mv "$bin.tmp" "$bin"
  fi
  bins+=("$bin")
done

# Runs one target for $seconds from a copy of its seed corpus; 0 when it found nothing.
run_one() {
  local name=$1 bin=$2 corpus
  corpus=$(mktemp -d)
  [ -d "$here/fuzz/corpus/$name" ] && cp -r "$here/fuzz/corpus/$name/." "$corpus/"
  echo "fuzz: running $name for ${seconds}s" >&2
  local rc=0
  (cd "$corpus" && "$bin" -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 \
      -artifact_prefix="$cache/$name-" -print_final_stats=1 "$corpus" \
      > "$cache/$name.log" 2>&1) || rc=1
  rm -rf "$corpus"
  return $rc
}

# Each target is single-threaded: BOXLITE_FUZZ_JOBS of them (default: one per CPU) run at
# once, each still for its full time on a CPU of its own.
jobs=${BOXLITE_FUZZ_JOBS:-$(nproc)}
declare -A pid_of
status=0
report() {
  echo "fuzz: $1 found a problem; see $cache/$1.log (the input is kept as" \
       "$cache/$1-crash-*: rerun it with $2 FILE)" >&2
  tail -40 "$cache/$1.log" >&2
  status=1
}
for i in "${!names[@]}"; do
  while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do wait -n || true; done
  run_one "${names[$i]}" "${bins[$i]}" &
  pid_of[$i]=$!
done
for i in "${!names[@]}"; do
  wait "${pid_of[$i]}" || report "${names[$i]}" "${bins[$i]}"
done
exit $status
