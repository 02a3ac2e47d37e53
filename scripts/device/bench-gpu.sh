#!/usr/bin/env bash
# The quick decode bench (npm run bench -- --quick) on a real GPU, prepared to finish within a few
# minutes on a machine without network: ours on Dawn in Node against transformers.js on
# onnxruntime's CPU, and in headless Chromium (ours vs transformers.js on WebGPU) where Chromium
# exists and starts. Results (JSON + Markdown) go to $OUT (default bench-results/).
#
# Needs: this checkout with node_modules installed (npm ci) and ../shared beside it. For Dawn's
# Vulkan backend the loader must be there: on the lent device machine, carry `.gl` (the Vulkan and
# GL loader .debs, see the device tool's README) and this script unpacks them first.
#   bash scripts/device/bench-gpu.sh            # Node and, if it starts, Chromium
#   NO_BROWSER=1 bash scripts/device/bench-gpu.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
if compgen -G ".gl/*.deb" >/dev/null; then
  for f in .gl/*.deb; do dpkg -x "$f" /; done
  ldconfig
fi
icd=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
if [ -f "$icd" ]; then export VK_DRIVER_FILES="$icd"; fi
out="${OUT:-bench-results}"
mkdir -p "$out"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null >"$out/gpu.txt" || true
browser=()
if [ -n "${NO_BROWSER:-}" ] || ! command -v "${CHROMIUM_PATH:-/usr/bin/chromium}" >/dev/null 2>&1; then
  browser=(--no-browser)
else
  # A real GPU in headless Chromium: Vulkan, no blocklist (SwiftShader otherwise).
  export CHROMIUM_EXTRA_ARGS="${CHROMIUM_EXTRA_ARGS:---enable-features=Vulkan --use-vulkan --ignore-gpu-blocklist}"
fi
timeout 280 npx tsx scripts/bench.ts --quick --out "$out" "${browser[@]}" || {
  echo "bench with the browser failed or timed out; Node only:" >&2
  timeout 200 npx tsx scripts/bench.ts --quick --no-browser --out "$out"
}
