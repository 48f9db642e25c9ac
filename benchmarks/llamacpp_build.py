"""What the portable llama.cpp build and the PASSIVE OpenMP wait policy cost, measured in one run.

    .venv/bin/python benchmarks/llamacpp_build.py                          # installed build only
    .venv/bin/python benchmarks/llamacpp_build.py --compare-site /tmp/native-site   # vs another build

The installed llama-cpp-python is built portably (scripts/install_llama_cpp.sh: x86-64-v3, no
AVX-512, no AMX). ``--compare-site`` points at a ``pip install --target`` folder holding another build
of the same version (e.g. the default ``-march=native`` one), loaded first on PYTHONPATH in its own
child process. Each case decodes ``--n-gen`` tokens and prefills ``--n-prompt`` tokens of the shipped
SmolLM2 Q4_1 GGUF, ``--repetitions`` times after a warm-up, on 2 threads:

- build: installed (portable) vs compare (if given), wait policy PASSIVE;
- wait policy on an idle machine: PASSIVE vs ACTIVE vs unset (OpenMP default), portable build;
- shared cores: the same decode while a second llama.cpp process decodes beside it, each policy.

Prints decode ratios and writes benchmarks/results/llamacpp_build.json (with commit and machine).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

from _common import provenance, write_result  # noqa: E402  (puts the repository on sys.path)

CHILD = r"""
import json, sys, time
n_gen, n_prompt, reps, seconds = (int(a) for a in sys.argv[1:5])
from edgemed.models import default_gguf_path
import llama_cpp
llm = llama_cpp.Llama(model_path=str(default_gguf_path()), n_ctx=1024, n_batch=512, n_threads=2,
                      n_threads_batch=2, verbose=False)
def decode():
    llm.reset(); t = time.perf_counter()
    for tok in [llm.token_bos()] + [100 + i for i in range(n_gen - 1)]:
        llm.eval([tok])
    return n_gen / (time.perf_counter() - t)
def prefill():
    llm.reset(); t = time.perf_counter(); llm.eval([100 + (i % 1000) for i in range(n_prompt)])
    return n_prompt / (time.perf_counter() - t)
if seconds:  # a neighbour: decode until the time is up
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        decode()
    llm.close(); sys.exit(0)
decode(); prefill()
tg = [decode() for _ in range(reps)]; pp = [prefill() for _ in range(reps)]
lib = sorted(p.name for p in (__import__('pathlib').Path(llama_cpp.__file__).parent / 'lib').glob('*.json'))
print(json.dumps({"tg": tg, "pp": pp, "llama_cpp_file": llama_cpp.__file__, "build_files": lib}))
llm.close()
"""


def run_case(policy: str | None, site: str | None, args, neighbour: bool = False) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    if policy:
        env["OMP_WAIT_POLICY"] = policy
    if site:
        env["PYTHONPATH"] = site + os.pathsep + env.get("PYTHONPATH", "")
    cmd = [sys.executable, "-c", CHILD, str(args.n_gen), str(args.n_prompt), str(args.repetitions)]
    side = None
    if neighbour:
        side = subprocess.Popen(cmd[:-1] + ["1", "600"], env=env, stdout=subprocess.DEVNULL)
        time.sleep(3.0)  # let it load and start decoding
    try:
        out = subprocess.run(cmd + ["0"], env=env, capture_output=True, text=True, check=True)
    finally:
        if side is not None:
            side.kill()
            side.wait()
    row = json.loads(out.stdout.strip().splitlines()[-1])
    for k in ("tg", "pp"):
        row[k + "_mean"] = statistics.mean(row[k])
        row[k + "_std"] = statistics.stdev(row[k]) if len(row[k]) > 1 else 0.0
    return {"policy": policy or "unset", "build": "compare" if site else "installed",
            "neighbour": neighbour, **row}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--compare-site", default=None, help="pip --target folder with another llama-cpp-python build.")
    ap.add_argument("--n-gen", type=int, default=128, help="Decode test length (tg).")
    ap.add_argument("--n-prompt", type=int, default=512, help="Prefill test length (pp).")
    ap.add_argument("--repetitions", type=int, default=5, help="Timed repetitions per case (after one warm-up).")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "llamacpp_build.json"))
    args = ap.parse_args()
    prov = provenance(__file__)
    from edgemed.runtimes.llamacpp import build_info

    cases = [run_case("PASSIVE", None, args)]
    if args.compare_site:
        cases.append(run_case("PASSIVE", args.compare_site, args))
    cases += [run_case("ACTIVE", None, args), run_case(None, None, args)]
    cases += [run_case(p, None, args, neighbour=True) for p in ("PASSIVE", None)]
    base = cases[0]["tg_mean"]
    for c in cases:
        c["tg_x_installed_passive_idle"] = c["tg_mean"] / base
        print(f"{c['build']:<9} policy={c['policy']:<7} neighbour={str(c['neighbour']):<5} "
              f"decode {c['tg_mean']:6.1f} ± {c['tg_std']:4.1f} tok/s ({c['tg_x_installed_passive_idle']:.2f}x)  "
              f"prefill {c['pp_mean']:7.1f} tok/s")
    write_result(args.out, {
        **prov, "installed_build": build_info(), "compare_site": args.compare_site,
        "settings": {"n_gen": args.n_gen, "n_prompt": args.n_prompt, "repetitions": args.repetitions, "threads": 2},
        "cases": cases})
    return 0


if __name__ == "__main__":
    sys.exit(main())
