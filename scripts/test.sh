#!/usr/bin/env bash
# Installs what the tests need (Debian packages and rustup components only when missing), checks
# formatting and lints, then runs every test.
# Usage: ./scripts/test.sh            (CI: bash .ci/run, which calls this with CI=true)
set -euo pipefail
cd "$(dirname "$0")/.."

# Software Vulkan (lavapipe) so the GPU backend's shaders run on machines without a GPU,
# Xvfb for the real-window screenshot test, fonts and X libraries for the window.
packages=(mesa-vulkan-drivers libvulkan1 xvfb xauth libxkbcommon-x11-0 libxcursor1 libxi6 libxrandr2 fonts-dejavu-core)
missing=()
for package in "${packages[@]}"; do
  dpkg -s "$package" >/dev/null 2>&1 || missing+=("$package")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  sudo_cmd=""
  [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# GPU tests must run: a missing adapter fails the suite instead of skipping it.
export INRLAB_REQUIRE_GPU=1
# The window test runs the real binary under a virtual display.
export INRLAB_REQUIRE_DISPLAY=1
if [ -z "${DISPLAY:-}" ]; then
  display=:$((90 + RANDOM % 100))
  Xvfb "$display" -screen 0 1600x1000x24 -nolisten tcp >/dev/null 2>&1 &
  xvfb_pid=$!
  trap 'kill $xvfb_pid 2>/dev/null || true' EXIT
  export DISPLAY=$display
  sleep 1
fi

if ! cargo clippy --version >/dev/null 2>&1 || ! cargo fmt --version >/dev/null 2>&1; then
  rustup component add clippy rustfmt
fi
cargo fmt --check
# One profile (release) for linting, building, testing and benchmarking, so nothing compiles
# twice; `testing` enables the hooks only tests call.
cargo clippy --release --locked --all-targets --features testing -- -D warnings
cargo test --release --locked --features testing "$@"
