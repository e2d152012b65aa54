#!/usr/bin/env bash
# Runs the tests on a lavapipe that has cooperative matrices, so the f16 cooperative path of
# the dense layers (shaders/tiled_cooperative.wgsl) is checked on a machine without a GPU.
#
# Debian 12's lavapipe (Mesa 22.3, what scripts/test.sh installs) has no
# VK_KHR_cooperative_matrix; trixie-backports' (Mesa 26.1) offers 8×8×8 f16 → f32 fragments.
# That Mesa needs trixie's glibc and LLVM 19, so this script unpacks them into a private
# folder (nothing is installed) and runs each test binary through trixie's dynamic loader, with
# INRLAB_REQUIRE_COOPERATIVE=1 so a test that cannot reach the cooperative path fails.
#
# Usage: scripts/cooperative_lavapipe.sh [cargo test arguments]
#        (default: the tests named cooperative; `--` alone runs every test this way)
# Needs: curl, python3, dpkg-deb; network access to deb.debian.org the first time.
set -euo pipefail
cd "$(dirname "$0")/.."
root=${INRLAB_MESA_ROOT:-$HOME/.cache/inrlab/mesa-trixie}
lib=$root/usr/lib/x86_64-linux-gnu

if [ ! -e "$lib/libvulkan_lvp.so" ]; then
  echo "unpacking trixie-backports' lavapipe into $root"
  mkdir -p "$root/debs"
  python3 - "$root/debs" <<'EOF'
import lzma, os, re, sys, urllib.request
mirror = "http://deb.debian.org/debian/"
def index(suite):
    data = urllib.request.urlopen(f"{mirror}dists/{suite}/main/binary-amd64/Packages.xz").read()
    packages = {}
    for block in lzma.decompress(data).decode().split("\n\n"):
        fields = dict(re.findall(r"^([\w-]+): (.*)$", block, re.M))
        if "Package" in fields:
            packages.setdefault(fields["Package"], fields)
    return packages
backports, trixie = index("trixie-backports"), index("trixie")
# mesa-vulkan-drivers and what its lavapipe loads that Debian 12 has too old or not at all.
wanted = """mesa-vulkan-drivers libmimalloc3 libc6 libllvm19 libstdc++6 libgcc-s1 libzstd1
libelf1t64 libexpat1 libdrm2 libdrm-amdgpu1 libdisplay-info2 libpng16-16t64 zlib1g libz3-4
libxml2 libffi8 libedit2 libtinfo6 libbsd0 libmd0 liblzma5 libicu76 libwayland-client0 libxcb1
libx11-xcb1 libxcb-dri3-0 libxcb-present0 libxcb-randr0 libxcb-shm0 libxcb-sync1 libxcb-xfixes0
libxshmfence1 libxau6 libxdmcp6 libx11-6""".split()
for name in wanted:
    fields = backports.get(name) or trixie[name]
    target = os.path.join(sys.argv[1], os.path.basename(fields["Filename"]))
    if not os.path.exists(target):
        urllib.request.urlretrieve(mirror + fields["Filename"], target)
    print(f"  {name} {fields['Version']}")
EOF
  for deb in "$root"/debs/*.deb; do dpkg-deb -x "$deb" "$root"; done
fi
sed "s#\"library_path\": *\"[^\"]*\"#\"library_path\": \"$lib/libvulkan_lvp.so\"#" \
  "$root/usr/share/vulkan/icd.d/lvp_icd.json" >"$root/lvp_icd.json"

runner=$root/run-with-trixie-mesa
cat >"$runner" <<EOF
#!/bin/sh
export VK_ICD_FILENAMES=$root/lvp_icd.json
exec $lib/ld-linux-x86-64.so.2 --library-path $lib:/lib/x86_64-linux-gnu:/usr/lib/x86_64-linux-gnu "\$@"
EOF
chmod +x "$runner"

export CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_RUNNER=$runner
export INRLAB_REQUIRE_GPU=1 INRLAB_REQUIRE_COOPERATIVE=1
export XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-/tmp}
if [ $# -eq 0 ]; then
  set -- cooperative
fi
cargo test --release --locked --features testing "$@"
