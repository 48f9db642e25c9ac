#!/usr/bin/env bash
# Build (once) and install llama-cpp-python for ANY machine of this architecture, never for this
# CPU only. There is no wheel on PyPI for Linux x86-64, so pip compiles the sdist; llama.cpp's
# default is -march=native, which on a VM that advertises AMX or AVX-512 without being able to run
# it gives a library that dies with SIGILL on the first decode. On x86-64 we therefore build with
# GGML_NATIVE=OFF and name the instruction sets ourselves: x86-64-v3 (AVX2, FMA, F16C, BMI2) when
# this CPU has AVX2, the SSE baseline otherwise; no AVX-512, no AMX. Other architectures keep
# llama.cpp's defaults. The wheel is cached per version and flag set (pip's own wheel cache is keyed
# by the sdist alone and would hand back a native build made with other flags).
#
#   usage: scripts/install_llama_cpp.sh PYTHON [VERSION]
set -euo pipefail
PY=${1:?usage: install_llama_cpp.sh PYTHON [VERSION]}
VER=${2:-0.3.36}

if [ "$(uname -m)" = "x86_64" ]; then
    if grep -qw avx2 /proc/cpuinfo 2>/dev/null; then
        FLAGS="-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON"
        FLAVOUR=x86-64-v3
    else
        FLAGS="-DGGML_NATIVE=OFF -DGGML_AVX=OFF -DGGML_AVX2=OFF -DGGML_FMA=OFF -DGGML_F16C=OFF"
        FLAVOUR=x86-64-sse
    fi
    FLAGS="$FLAGS -DGGML_AVX512=OFF -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF"
else
    FLAGS=""
    FLAVOUR="$(uname -m)-default"
fi

WHEELS="${EDGEMED_WHEEL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/edgemed/wheels}/llama_cpp_python-$VER-$FLAVOUR"
# The cache holds only what this script can build again: a wheel that is not a readable zip (a cut
# copy, a full disk) is moved aside with one warning and rebuilt, never handed to pip.
for whl in "$WHEELS"/llama_cpp_python-"$VER"-*.whl; do
    if [ -f "$whl" ] && ! "$PY" -m zipfile -t "$whl" >/dev/null 2>&1; then
        ASIDE="$WHEELS.corrupt-$(date -u +%Y%m%dT%H%M%SZ)"
        echo "warning: wheel cache $whl cannot be read: moved aside to $ASIDE and rebuilt" >&2
        mv "$WHEELS" "$ASIDE"
        break
    fi
done
if ! ls "$WHEELS"/llama_cpp_python-"$VER"-*.whl >/dev/null 2>&1; then
    echo "building llama-cpp-python $VER for $FLAVOUR (about 10 min on 2 cores): CMAKE_ARGS=$FLAGS"
    mkdir -p "$WHEELS.partial"
    CMAKE_ARGS="$FLAGS" CMAKE_BUILD_PARALLEL_LEVEL="${CMAKE_BUILD_PARALLEL_LEVEL:-2}" \
        "$PY" -m pip wheel --no-deps --no-cache-dir --no-binary llama-cpp-python \
        -w "$WHEELS.partial" "llama-cpp-python==$VER"
    rm -rf "$WHEELS" && mv "$WHEELS.partial" "$WHEELS"
fi
"$PY" -m pip install -q --force-reinstall --no-deps "$WHEELS"/llama_cpp_python-"$VER"-*.whl
# Record how this build was made; edgemed reads it to explain a crash and the tests check it.
"$PY" - "$FLAVOUR" "$FLAGS" <<'PYEOF'
import importlib.util, json, pathlib, sys
# find_spec locates the package without importing it (its dependencies come with edgemed's install).
lib = pathlib.Path(importlib.util.find_spec("llama_cpp").origin).parent / "lib"
(lib / "edgemed_build.json").write_text(json.dumps({"flavour": sys.argv[1], "cmake_args": sys.argv[2]}) + "\n")
print(f"llama-cpp-python installed from a {sys.argv[1]} build ({lib})")
PYEOF
# A CPU variant beside the portable build, for a machine whose CPU runs it: the same llama-cpp-python
# compiled with AVX-512 (F/CD/VL/DQ/BW, VNNI, VBMI, BF16; still no AMX). Only its shared libraries are
# kept, under <venv>/share/edgemed/llama-cpp-variants/NAME/; edgemed.runtimes.llamacpp loads them
# (LLAMA_CPP_LIB_PATH) when the CPU has every flag in its VARIANTS entry, the portable ones otherwise,
# so a venv copied to another machine still runs. Prompt processing (the judge) is what it speeds up.
# EDGEMED_LLAMA_VARIANTS=none skips it (one more ≈ 10 min compile, once per machine).
VARIANT=x86-64-avx512
VARIANT_NEEDS="avx2 fma f16c bmi2 avx512f avx512cd avx512vl avx512dq avx512bw avx512_vnni avx512vbmi avx512_bf16"
VARIANT_FLAGS="-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON -DGGML_AVX512=ON -DGGML_AVX512_VNNI=ON -DGGML_AVX512_VBMI=ON -DGGML_AVX512_BF16=ON -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF"
cpu_runs_variant() {
    [ "$(uname -m)" = "x86_64" ] && [ "${EDGEMED_LLAMA_VARIANTS:-}" != "none" ] || return 1
    local flags; flags=" $(grep -m1 '^flags' /proc/cpuinfo 2>/dev/null | cut -d: -f2) "
    for f in $VARIANT_NEEDS; do case "$flags" in *" $f "*) ;; *) return 1 ;; esac; done
}
if cpu_runs_variant; then
    VWHEELS="${EDGEMED_WHEEL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/edgemed/wheels}/llama_cpp_python-$VER-$VARIANT"
    if ! ls "$VWHEELS"/llama_cpp_python-"$VER"-*.whl >/dev/null 2>&1 \
            || ! "$PY" -m zipfile -t "$VWHEELS"/llama_cpp_python-"$VER"-*.whl >/dev/null 2>&1; then
        echo "building the $VARIANT variant of llama-cpp-python $VER (this CPU runs it; about 10 min on 2 cores)"
        rm -rf "$VWHEELS.partial" && mkdir -p "$VWHEELS.partial"
        CMAKE_ARGS="$VARIANT_FLAGS" CMAKE_BUILD_PARALLEL_LEVEL="${CMAKE_BUILD_PARALLEL_LEVEL:-2}" \
            "$PY" -m pip wheel --no-deps --no-cache-dir --no-binary llama-cpp-python \
            -w "$VWHEELS.partial" "llama-cpp-python==$VER"
        rm -rf "$VWHEELS" && mv "$VWHEELS.partial" "$VWHEELS"
    fi
    "$PY" - "$VARIANT" "$VARIANT_FLAGS" "$VWHEELS"/llama_cpp_python-"$VER"-*.whl <<'PYEOF'
import json, pathlib, shutil, sys, zipfile
name, flags, wheel = sys.argv[1:4]
dest = pathlib.Path(sys.prefix) / "share" / "edgemed" / "llama-cpp-variants" / name
tmp = dest.with_name(dest.name + ".partial")
shutil.rmtree(tmp, ignore_errors=True)
tmp.mkdir(parents=True)
with zipfile.ZipFile(wheel) as z:
    for member in z.namelist():
        if member.startswith("llama_cpp/lib/") and ".so" in member:
            (tmp / pathlib.PurePosixPath(member).name).write_bytes(z.read(member))
(tmp / "edgemed_build.json").write_text(json.dumps({"flavour": name, "cmake_args": flags}) + "\n")
shutil.rmtree(dest, ignore_errors=True)
tmp.rename(dest)
print(f"llama-cpp-python {name} variant libraries in {dest} (loaded where the CPU runs them)")
PYEOF
fi
# llama-imatrix, llama-quantize and llama-bench from the same source, linked to this wheel's libraries
# (heart-calibrated GGUF quants and the llama-bench yardstick). It asks edgemed where the tools go, so
# it runs once edgemed imports: from the source tree (the repo root is the cwd of `make install`) or
# installed. `make install` calls this script again after `pip install -e .`: that pass only re-links.
if "$PY" -c "import edgemed" 2>/dev/null; then
    bash "$(dirname "$0")/build_llama_tools.sh" "$PY" "$VER" "$FLAVOUR" "$FLAGS"
fi
