#!/usr/bin/env bash
# GPU training throughput: mlx's CUDA back end against PyTorch with `.cuda()`, on the three
# Fashion-MNIST workloads (MLP, LeNet-5, row-LSTM), one epoch each, in the same run. It is
# `fashion_vs_pytorch.py --backend cuda` with the CUDA 13 libraries of the Python `nvidia`
# packages (which a CUDA 13 PyTorch installs) put on the library path for mlx.
#
# On a machine with an NVIDIA GPU, driver R580 or newer (CUDA 13), PyTorch with CUDA, numpy:
#
#   1. Build here:   cargo build --release --features cuda
#      (no CUDA is needed to build: the libraries are loaded when mlx starts)
#   2. Copy to the GPU machine: target/release/mlx, examples/, bench/, and the data
#      (the examples read /usr/share/datasets/fashion-mnist/*.gz: copy that directory to the
#      same path there, or apt-get install dataset-fashion-mnist).
#   3. There, from the copy's root:
#        bench/gpu_vs_pytorch.sh [--models mlp,lenet,lstm] [--repeat 3] [--json out.json]
#      (other options as fashion_vs_pytorch.py's; --mlx PATH if the binary is elsewhere).
#
# mlx finds libcuda (the driver), libnvrtc and libcublas on the library path; if they are
# elsewhere than the `nvidia` packages, set LD_LIBRARY_PATH yourself. `mlx run FILE
# --backend cuda` says which library is missing, if one is.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"

nvidia_lib="$(python3 -c 'import nvidia, os; print(os.path.join(list(nvidia.__path__)[0], "cu13", "lib"))' 2>/dev/null || true)"
if [ -n "$nvidia_lib" ] && [ -d "$nvidia_lib" ]; then
  export LD_LIBRARY_PATH="$nvidia_lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
else
  echo "note: no CUDA 13 libraries from the Python nvidia packages; using LD_LIBRARY_PATH as it is" >&2
fi

if command -v nvidia-smi >/dev/null 2>&1; then
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader >&2 || true
fi

mlx="${MLX:-$here/../target/release/mlx}"
exec python3 "$here/fashion_vs_pytorch.py" --backend cuda --mlx "$mlx" "$@"
