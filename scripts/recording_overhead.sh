#!/usr/bin/env bash
# How much recording slows the compute, in the real window: the Fourier MLP alone on the sample
# image, steps per second over a measured interval without recording, then while recording the
# trajectory grid every step (GIF). The window runs under its own Xvfb and is driven with
# xdotool (Ctrl+S saves the metrics at both ends of the interval, Ctrl+R starts and stops the
# recording); steps per second come from the two metrics files.
# Usage: scripts/recording_overhead.sh [seconds=60]   (after cargo build --release)
# Needs: Xvfb, xdotool (Debian: xvfb xdotool), and Pillow to count the recorded frames.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
binary=${INRLAB:-target/release/inrlab}
display=:$((200 + RANDOM % 50))
Xvfb "$display" -screen 0 1600x1000x24 -nolisten tcp >/dev/null 2>&1 &
xvfb=$!
trap 'kill $xvfb 2>/dev/null || true' EXIT
export DISPLAY=$display
sleep 1

# Ctrl+<key>, with the modifier held across a frame (egui reads modifiers per frame).
ctrl() { xdotool keydown ctrl; sleep 0.2; xdotool key "$1"; sleep 0.2; xdotool keyup ctrl; }

# Steps of fourier-mlp listed in a metrics CSV.
steps_in() { grep -c '^fourier-mlp,' "$1" || true; }

# measure <record: yes|no>: prints "steps seconds frames"
measure() {
  local record=$1 home
  home=$(mktemp -d)
  mkdir -p "$home/Pictures"
  HOME=$home "$binary" --methods fourier-mlp --steps 100000 --backend cpu >"$home/log" 2>&1 &
  local app=$!
  local window
  window=$(xdotool search --sync --onlyvisible --name inrlab | head -1)
  sleep 20 # the first steps and the window settle
  local folder=$home/Pictures/inrlab
  # Keyboard focus (there is no window manager): a click on the status bar, which does nothing.
  xdotool windowfocus "$window" 2>/dev/null || true
  xdotool mousemove --window "$window" 740 894 click 1
  sleep 0.5
  if [ "$record" = yes ]; then
    ctrl r
    sleep 2
  fi
  ctrl s
  local start
  start=$(date +%s.%N)
  while [ ! -f "$folder/metrics-001.csv" ]; do sleep 0.1; done
  sleep "$seconds"
  ctrl s
  while [ ! -f "$folder/metrics-002.csv" ]; do sleep 0.1; done
  local end
  end=$(date +%s.%N)
  if [ "$record" = yes ]; then
    ctrl r
    sleep 3
  fi
  local first last
  first=$(steps_in "$folder/metrics-001.csv")
  last=$(steps_in "$folder/metrics-002.csv")
  local frames=0
  if [ "$record" = yes ]; then
    local file
    file=$(ls "$folder"/recording-001.* 2>/dev/null | head -1)
    frames=$(python3 -c "
from PIL import Image; import sys
im = Image.open(sys.argv[1]); n = 0
try:
    while True: n += 1; im.seek(im.tell() + 1)
except EOFError: pass
print(n)" "$file" 2>/dev/null || echo '?')
  fi
  kill "$app" 2>/dev/null || true
  wait "$app" 2>/dev/null || true
  echo "$((last - first)) $(python3 -c "print(f'{$end - $start:.1f}')") $frames"
  rm -rf "$home"
}

read -r plain_steps plain_seconds _ < <(measure no)
read -r rec_steps rec_seconds frames < <(measure yes)
python3 - "$plain_steps" "$plain_seconds" "$rec_steps" "$rec_seconds" "$frames" <<'EOF'
import sys
plain_steps, plain_s, rec_steps, rec_s = map(float, sys.argv[1:5])
frames = sys.argv[5]
plain, rec = plain_steps / plain_s, rec_steps / rec_s
print(f"without recording: {plain:.1f} steps/s ({plain_steps:.0f} steps in {plain_s:.1f} s)")
print(f"recording the grid every step (GIF): {rec:.1f} steps/s "
      f"({rec_steps:.0f} steps in {rec_s:.1f} s, {frames} frames)")
print(f"slowdown: {100 * (1 - rec / plain):.1f}%")
EOF
