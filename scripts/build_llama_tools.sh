#!/usr/bin/env bash
# Build llama.cpp's llama-quantize, llama-imatrix and llama-bench from the SAME vendored source as
# the installed llama-cpp-python (its sdist), linked against THAT wheel's libllama/libggml, and
# install them next to the GGUF converter:
#   <venv>/share/edgemed/tools/llama-cpp-python-VER/bin/
# Linking the wheel's shared libraries means the tools run exactly the kernels the kit runs (same
# portable flags, never -march=native) and only llama.cpp's common/ and the three tools are
# compiled here (~60 files), not llama and ggml again (~220 files, over an hour on 2 busy cores).
# The Python API can quantize, but it cannot compute an importance matrix, hand one to the
# quantizer (a C++ map behind a void pointer), or time like llama-bench.
# Objects are cached per version and flavour; the link is redone per venv.
#
#   usage: scripts/build_llama_tools.sh PYTHON VERSION FLAVOUR "CMAKE FLAGS"
set -euo pipefail
PY=${1:?usage: build_llama_tools.sh PYTHON VERSION FLAVOUR FLAGS}
VER=${2:?version}
FLAVOUR=${3:?flavour}
FLAGS=${4-}

CACHE="${EDGEMED_WHEEL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/edgemed/wheels}/llama_cpp_tools-$VER-$FLAVOUR"
LIB=$("$PY" -c "import importlib.util, pathlib; print(pathlib.Path(importlib.util.find_spec('llama_cpp').origin).parent / 'lib')")
if ! [ -f "$CACHE/objects.done" ]; then
    echo "compiling llama.cpp common/ + llama-quantize, llama-imatrix, llama-bench from llama-cpp-python $VER (10-30 min on 2 cores)"
    rm -rf "$CACHE" && mkdir -p "$CACHE/sdist"
    # ninja builds single object files without their libraries' link targets; from PyPI if absent.
    command -v ninja >/dev/null || { "$PY" -m pip install -q ninja && PATH="$(dirname "$PY"):$PATH"; }
    "$PY" -m pip download -q --no-deps --no-binary :all: --disable-pip-version-check \
        "llama-cpp-python==$VER" -d "$CACHE/sdist"
    tar xzf "$CACHE"/sdist/llama_cpp_python-"$VER".tar.gz -C "$CACHE"
    SRC="$CACHE/llama_cpp_python-$VER/vendor/llama.cpp"
    # shellcheck disable=SC2086  # FLAGS is a list of -D options
    cmake -G Ninja -S "$SRC" -B "$CACHE/build" -DCMAKE_BUILD_TYPE=Release -DBUILD_SHARED_LIBS=ON \
        -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=OFF \
        -DLLAMA_BUILD_APP=OFF -DLLAMA_OPENSSL=OFF $FLAGS >"$CACHE/cmake.log"
    # Only the object files of common/, its vendored helpers and the three tools.
    OBJS=$(cd "$CACHE/build" && ninja -t targets all | cut -d: -f1 | grep -E '\.o$' |
           grep -E '^(common|vendor|tools/(llama-bench|quantize|imatrix))/')
    # shellcheck disable=SC2086
    (cd "$CACHE/build" && ninja -j "${CMAKE_BUILD_PARALLEL_LEVEL:-2}" $OBJS) >"$CACHE/build.log"
    touch "$CACHE/objects.done"
fi
DEST=$("$PY" -c "from edgemed.export.llama_tools import tools_bin_dir; print(tools_bin_dir())")
mkdir -p "$DEST"
B="$CACHE/build"
COMMON=$(find "$B/common" "$B/vendor" -name '*.o' | sort)
link() {  # link TOOL OBJECTS...: against the installed wheel's libraries, found through an rpath
    local tool=$1; shift
    # shellcheck disable=SC2086
    c++ -o "$DEST/$tool" "$@" $COMMON -L"$LIB" -Wl,-rpath,"$LIB" -lllama -lggml -lggml-base -lpthread
}
link llama-bench "$B"/tools/llama-bench/CMakeFiles/llama-bench*.dir/*.o
link llama-quantize "$B"/tools/quantize/CMakeFiles/llama-quantize*.dir/*.o
link llama-imatrix "$B"/tools/imatrix/CMakeFiles/llama-imatrix.dir/*.o
echo "{\"llama_cpp_python\": \"$VER\", \"flavour\": \"$FLAVOUR\", \"cmake_args\": \"$FLAGS\", \"linked_against\": \"$LIB\"}" >"$DEST/edgemed_build.json"
echo "llama.cpp tools (llama-bench, llama-quantize, llama-imatrix) installed in $DEST"
