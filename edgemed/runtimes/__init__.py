"""One runtime layer per artifact kind: loading, threads, CPU-feature guards and wait policy live here
once. ``llamacpp`` opens GGUF builds (export's parity checks, bench's llama.cpp runner, the llama.cpp
judge); ``onnxruntime`` opens ONNX builds (parity and bench's onnxruntime runner). PyTorch folders
load through ``edgemed.models.load_model`` (parity's reference and bench's torch runner)."""
