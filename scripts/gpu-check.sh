#!/usr/bin/env bash
# gpu-check.sh: the prepared check for a GPU machine that has PyTorch (with
# CUDA), nvcc, cmake and ninja but no Go and no network. It uses Go binaries
# built beforehand on a machine with Go (`make gpu-check-prep`, which packs
# gpu.tar.xz: the hiddenlab and hlbench binaries and the test binaries), and:
#   1. builds the CUDA shim into build/cuda against the installed PyTorch's
#      libtorch (timed),
#   2. reports the devices through the carried binary and the CUDA shim,
#   3. runs the carried Go test binaries with the CUDA shim (CUDA tests run
#      instead of skipping),
#   4. runs a smoke run (a few steps on cuda, bf16) of every shipped recipe,
#   5. runs the GPU benchmark (GPT-2 small Go vs PyTorch eager, MFU; the
#      codebook model at the paper's TokFSM scale),
# writing logs and summary.md into the results folder. Budget: 8 minutes.
#
# usage: scripts/gpu-check.sh [results dir]
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-gpu-results}
mkdir -p "$OUT"
SUMMARY="$OUT/summary.md"
PY=${PYTHON:-python3}
start=$(date +%s)
echo "# hiddenlab GPU check ($(date -u +%FT%TZ))" > "$SUMMARY"
note() { echo "$*" | tee -a "$SUMMARY"; }
section() { note ""; note "## $1"; }
elapsed() { echo $(( $(date +%s) - start )); }

section "1. CUDA shim build"
[ -x gpu/hiddenlab ] || { [ -f gpu.tar.xz ] && tar -xJf gpu.tar.xz; }
if [ ! -x gpu/hiddenlab ]; then
  note "FAIL: gpu/ missing: run 'make gpu-check-prep' on a machine with Go and carry gpu.tar.xz"; exit 1
fi
TORCH_DIR=$($PY -c 'import torch,os;print(os.path.join(torch.utils.cmake_prefix_path,"Torch"))')
$PY -c 'import torch;print("torch",torch.__version__,"cuda",torch.version.cuda,"cudnn",torch.backends.cudnn.version(),"cxx11abi",torch.compiled_with_cxx11_abi())' | tee -a "$SUMMARY"
CAP=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null | head -1)
export TORCH_CUDA_ARCH_LIST=${CAP:-9.0}
export CUDACXX=${CUDACXX:-$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)}
t0=$(date +%s)
if cmake -S . -B build/cuda -G Ninja -DCMAKE_BUILD_TYPE=Release -DTorch_DIR="$TORCH_DIR" \
     -DCMAKE_CUDA_COMPILER="$CUDACXX" > "$OUT/cmake.log" 2>&1 && ninja -C build/cuda > "$OUT/ninja.log" 2>&1; then
  note "built build/cuda/libhlshim.so.1 in $(( $(date +%s) - t0 )) s (TORCH_CUDA_ARCH_LIST=$TORCH_CUDA_ARCH_LIST)"
  readelf -d build/cuda/libhlshim.so | grep -E "NEEDED|RUNPATH" > "$OUT/needed.txt"
  grep -q torch_cuda "$OUT/needed.txt" && note "libtorch_cuda is in DT_NEEDED" || note "WARNING: libtorch_cuda missing from DT_NEEDED"
else
  note "FAIL: shim build failed after $(( $(date +%s) - t0 )) s; tail of the logs:"; tail -30 "$OUT/cmake.log" "$OUT/ninja.log" | tee -a "$SUMMARY"; exit 1
fi
TORCH_LIB=$(dirname "$TORCH_DIR")/../../lib
export LD_LIBRARY_PATH="$PWD/build/cuda:$TORCH_LIB${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
# The binaries load the shim at run time: this selects the CUDA build.
export HIDDENLAB_SHIM_DIR="$PWD/build/cuda"

section "2. Devices"
timeout 60 gpu/hiddenlab info 2>&1 | tee "$OUT/info.txt" | tee -a "$SUMMARY"

section "3. Go tests with the CUDA shim"
note "| package | result | seconds |"; note "|---|---|---|"
for t in gpu/tests/*.test; do
  pkg=$(basename "$t" .test); dir=$(cat "gpu/tests/$pkg.dir")
  t1=$(date +%s)
  if (cd "$dir" && timeout 180 "$OLDPWD/$t" -test.count=1 -test.short -test.v > "$OLDPWD/$OUT/test-$pkg.log" 2>&1); then r=ok; else r=FAIL; fi
  note "| $dir | $r ($(grep -c '^--- PASS' "$OUT/test-$pkg.log") pass, $(grep -c '^--- SKIP' "$OUT/test-$pkg.log") skip, $(grep -c '^--- FAIL' "$OUT/test-$pkg.log") fail) | $(( $(date +%s) - t1 )) |"
done
grep -h -E "device 0:|max \|Δ" "$OUT"/test-*.log | head -5 | tee -a "$SUMMARY"

section "4. Smoke runs of the shipped recipes on cuda (bf16)"
note "| recipe | result | seconds |"; note "|---|---|---|"
# hrpo-rl starts from hrpo-sft's checkpoint, so hrpo-sft runs first and
# hrpo-rl gets its smoke run's directory; hrpo.yaml is those two stages in one
# run (its rl stage wants the sft stage's step-1500 checkpoint), so the pair
# stands in for it.
for r in $(ls recipes/*.yaml | grep -v -e '/hrpo.yaml$' -e '/hrpo-rl.yaml$') recipes/hrpo-rl.yaml; do
  name=$(basename "$r" .yaml); t1=$(date +%s); extra=()
  [ "$name" = hrpo-rl ] && extra=(train.init_from="$OUT/runs/hrpo-sft")
  if timeout 120 gpu/hiddenlab run "$r" train.device=cuda train.precision=bf16 train.steps=20 train.eval_every=10 \
       train.checkpoint_every=10 output.dir="$OUT/runs/$name" "${extra[@]}" -no-progress > "$OUT/run-$name.log" 2>&1; then res=ok; else res="FAIL: $(tail -1 "$OUT/run-$name.log")"; fi
  note "| $name | $res | $(( $(date +%s) - t1 )) |"
done
note "(hrpo.yaml is covered by hrpo-sft + hrpo-rl)"

section "5. GPU benchmark"
timeout 240 gpu/hlbench -suite gpu -rounds 2 -python "$PY" 2>&1 | tee "$OUT/bench.log" | tee -a "$SUMMARY"

note ""; note "total: $(elapsed) s"
