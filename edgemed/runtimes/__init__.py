"""One runtime layer per artifact kind: loading, threads, CPU-feature guards and wait policy live here
once, and export's parity checks, bench's runners and the llama.cpp judge all go through it."""
