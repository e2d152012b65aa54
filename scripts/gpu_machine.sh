#!/usr/bin/env bash
# The one prepared run for a lent GPU machine (an H100 or H200 with no cargo and no network):
# issue 13's figures and the GPU tests on real hardware, in one call that fits its short lease.
#
#   bash scripts/gpu_machine.sh pack      # here: builds, strips and compresses the binaries and
#                                         # the Vulkan loader into .device/ (ignored by git)
#   bash scripts/gpu_machine.sh measure   # there, with .device carried: the bench on the GPU,
#                                         # PyTorch CUDA eager beside it, then the GPU tests
#
# With the workplace's device tool: run(command="bash scripts/gpu_machine.sh measure",
# carry=[".device"], timeout_s=480). Everything lands under $OUT (bench.txt, pytorch.txt,
# tests.txt, summary.txt); the summary is printed last.
set -uo pipefail
cd "$(dirname "$0")/.."

device_dir=.device
# The integration tests with GPU cases (the kernels against the CPU backend, the reference
# table, training along the f32 curve, the wavelet operator, masks, every registered method,
# the worker) and the library's own; the window's need a display and stay in CI.
test_targets=(backend_ops reservoir_parity training wavelet sparse registry worker lib)

pack() {
  set -e
  rm -rf "$device_dir"
  mkdir -p "$device_dir/bin" "$device_dir/gl"
  cargo build --release --locked --features testing --bins
  # The test executables of this build, by target name (cargo prints them as JSON).
  cargo test --release --locked --features testing --no-run --message-format=json 2>/dev/null |
    python3 -c '
import json, sys
wanted = set(sys.argv[1:])
for line in sys.stdin:
    message = json.loads(line)
    if message.get("reason") == "compiler-artifact" and message.get("executable") \
            and message["profile"]["test"]:
        target = message["target"]
        # The library unit tests are "lib"; those of the command line binary are left out.
        name = "lib" if "lib" in target["kind"] else target["name"]
        if name in wanted and "bin" not in target["kind"]:
            print(name, message["executable"])
' "${test_targets[@]}" >"$device_dir/tests.list"
  while read -r name executable; do
    strip -o "$device_dir/bin/test-$name" "$executable"
  done <"$device_dir/tests.list"
  strip -o "$device_dir/bin/inrlab" target/release/inrlab
  xz -T0 -6 "$device_dir"/bin/*
  # The test binaries read tests/data by the path they were built at.
  pwd >"$device_dir/built_at"
  # The Vulkan loader, for a machine that has the driver but not the loader.
  local apt_options=(-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 -oDir::State::Lists=/tmp/amd64-lists)
  mkdir -p /tmp/amd64-lists/partial
  apt-get "${apt_options[@]}" update -qq
  (cd "$device_dir/gl" && apt-get "${apt_options[@]}" download libvulkan1 >/dev/null)
  rm "$device_dir/tests.list"
  du -sh "$device_dir"
  local bytes
  bytes=$(du -sb "$device_dir" | cut -f1)
  if [ "$bytes" -gt $((60 * 1024 * 1024)) ]; then
    echo "$device_dir is over 60 MiB: too large to carry with the working tree" >&2
    exit 1
  fi
}

# Runs one stage under a time limit and records its exit status and seconds in the summary.
stage() {
  local name=$1 limit=$2
  shift 2
  local started=$SECONDS
  echo "== $name (limit ${limit} s)" >&2
  timeout --kill-after=10 "$limit" "$@"
  local status=$?
  local verdict="ok"
  [ "$status" -ne 0 ] && verdict="exit status $status"
  [ "$status" -eq 124 ] && verdict="over its ${limit} s limit"
  printf '%-10s %4d s  %s\n' "$name" $((SECONDS - started)) "$verdict" >>"$out/summary.txt"
}

gpu_tests() {
  local name failed=0
  # In the order of test_targets (the kernels first), so a stage stopped at its limit has
  # run the ones that matter most.
  for name in "${test_targets[@]}"; do
    echo "-- test-$name"
    # Every GPU case is required to run here: no adapter, or no cooperative matrices on a
    # driver that should have them, fails instead of skipping.
    INRLAB_REQUIRE_GPU=1 INRLAB_REQUIRE_COOPERATIVE=1 "$bin/test-$name" || failed=1
  done
  return $failed
}

measure() {
  out=${OUT:-/tmp/inrlab-gpu-machine}
  mkdir -p "$out"
  : >"$out/summary.txt"
  if [ ! -d "$device_dir/bin" ]; then
    echo "no $device_dir/bin: run 'bash scripts/gpu_machine.sh pack' here and carry $device_dir" >&2
    exit 2
  fi
  # The loader only where the machine lacks one; unpacking over a system's own can break it.
  if ! ldconfig -p | grep -q 'libvulkan\.so\.1'; then
    for package in "$device_dir"/gl/*.deb; do dpkg -x "$package" /; done
    ldconfig
  fi
  local nvidia_icd=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
  if [ -z "${VK_DRIVER_FILES:-}" ] && [ -f "$nvidia_icd" ] &&
    ! ls /usr/share/vulkan/icd.d/nvidia* /etc/vulkan/icd.d/nvidia* >/dev/null 2>&1; then
    export VK_DRIVER_FILES=$nvidia_icd
  fi
  bin=/tmp/inrlab-bin
  mkdir -p "$bin"
  local packed
  for packed in "$device_dir"/bin/*.xz; do
    local name=${packed##*/}
    python3 -c 'import lzma, shutil, sys; shutil.copyfileobj(lzma.open(sys.argv[1]), open(sys.argv[2], "wb"))' \
      "$packed" "$bin/${name%.xz}"
    chmod +x "$bin/${name%.xz}"
  done
  local built_at
  built_at=$(cat "$device_dir/built_at")
  if [ ! -e "$built_at/tests/data" ]; then
    mkdir -p "$(dirname "$built_at")"
    ln -sfn "$PWD" "$built_at"
  fi
  {
    echo "machine: $(nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,temperature.gpu --format=csv,noheader 2>/dev/null || echo 'no nvidia-smi')"
    echo "cores: $(nproc)"
  } >>"$out/summary.txt"

  # Timings first, on an idle GPU; the tests, which load it from several threads, after.
  # The bench's own UI-frame and window-scheduling figures are CPU ones, measured in CI, and
  # its Python baselines run in the pytorch stage below (numpy's are CPU ones; the GPU targets
  # are absolute times).
  stage bench "${BENCH_LIMIT:-200}" bash -c \
    "'$bin/inrlab' bench --backend gpu --ui-frames 0 --scheduling false --python none >'$out/bench.txt' 2>&1"
  stage pytorch "${PYTORCH_LIMIT:-90}" bash -c \
    "PYTHONUNBUFFERED=1 python3 scripts/pytorch_baseline.py --device cuda --sizes 128,224,512 \
       >'$out/pytorch.txt' 2>&1"
  stage tests "${TESTS_LIMIT:-150}" bash -c "$(declare -p test_targets); $(declare -f gpu_tests);
    bin='$bin' gpu_tests >'$out/tests.txt' 2>&1"

  # The bench prints each part as it is measured, so a stage stopped at its limit keeps
  # what it had.
  echo "== bench"
  grep -v '^measuring' "$out/bench.txt" | tail -n 120
  echo "== pytorch"
  tail -n 20 "$out/pytorch.txt"
  echo "== tests"
  grep -E '^(-- |test result|failures:|    [a-z_:]+$)|panicked' "$out/tests.txt" | tail -n 40
  echo "== summary"
  cat "$out/summary.txt"
}

case "${1:-}" in
  pack) pack ;;
  measure) measure ;;
  *)
    echo "usage: bash scripts/gpu_machine.sh pack|measure" >&2
    exit 2
    ;;
esac
