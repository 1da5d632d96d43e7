#!/usr/bin/env bash
# The device check: the Triton kernels compiled for a real GPU (tests/triton with the
# interpreter off), then the GPU benchmarks.  Run from the repository root on a CUDA machine:
#   bash tools/gpu_check.sh
set -u
export PYTHONPATH="$PWD" TRITON_INTERPRET=0
python -c "import torch, triton; print('torch', torch.__version__, 'triton', triton.__version__, torch.cuda.get_device_name())"
timeout 240 python -m pytest tests/triton -q -p no:cacheprovider 2>&1 | tail -8
timeout 120 python benchmarks/fused.py 2>&1 | tail -14
timeout 90 python benchmarks/train_step.py --device cuda --backend triton 2>&1 | tail -12
