#!/usr/bin/python3
"""Time clinfer and PyTorch on the same encoder shapes, alternating one forward pass each.

    go build -o /tmp/sidebyside ./benchmarks/sidebyside
    /usr/bin/python3 benchmarks/sidebyside/sidebyside.py --go /tmp/sidebyside \
        --anchor ../shared/bench --threads 2 --shapes bert:8x128,bert:1x128 --pairs 15

The PyTorch models are torch_anchor.py's own (imported from --anchor), so the comparison is the
one its README describes, only interleaved: pairs run in ABBA order (Go first in odd pairs,
PyTorch first in even ones), and each pair gives a ratio torch_ms / go_ms measured within a few
seconds. One JSON line per shape: medians of each side and the median and quartiles of the
per-pair ratios (above 1: clinfer is faster).
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--go", required=True, help="the built benchmarks/sidebyside binary")
    ap.add_argument("--anchor", required=True, help="directory holding torch_anchor.py")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--shapes", default="bert:8x128", help="MODEL:BATCHxLENGTH,... (bert, xlmr)")
    ap.add_argument("--pairs", type=int, default=15)
    ap.add_argument("--warmup", type=int, default=2)
    args = ap.parse_args()

    sys.path.insert(0, os.path.abspath(args.anchor))
    import torch_anchor
    if "TORCH_ANCHOR_BLAS" not in os.environ:
        # the BLAS library and its thread count are fixed at load: re-run with torch_anchor's
        # environment (OpenMP OpenBLAS when installed), as its own timing children do
        os.execve(sys.executable, [sys.executable] + sys.argv, torch_anchor.child_env(args.threads, "auto"))
    import torch

    torch.set_num_threads(args.threads)
    blas = [os.path.basename(x) for x in torch_anchor.blas_info(torch, args.threads)["blas_libs"]]
    BertTokenCls = torch_anchor.build_models(torch)[0]
    go = subprocess.Popen([args.go, "-threads", str(args.threads)], stdin=subprocess.PIPE,
                          stdout=subprocess.PIPE, text=True, bufsize=1)

    def go_run(model, b, s):
        go.stdin.write(f"{model} {b} {s}\n")
        go.stdin.flush()
        line = go.stdout.readline()
        if not line:
            sys.exit("sidebyside: the Go process ended")
        return float(line)

    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    built = {}
    with torch.no_grad():
        for spec in args.shapes.split(","):
            model, shape = spec.split(":")
            b, s = (int(x) for x in shape.split("x"))
            if model not in built:
                built[model] = (BertTokenCls(30522, 768, 12, 12, 3072, 13) if model == "bert" else
                                BertTokenCls(250002, 1024, 24, 16, 4096, 17, types=1, eps=1e-5)).eval()
            m = built[model]
            ids = torch.randint(1000, 30000, (b, s), generator=g)
            mask = torch.ones(b, s, dtype=torch.long)

            def torch_run():
                t = time.perf_counter()
                m(ids, mask)
                return (time.perf_counter() - t) * 1e3

            for _ in range(args.warmup):
                go_run(model, b, s)
                torch_run()
            gos, tos, ratios = [], [], []
            for p in range(args.pairs):
                if p % 2 == 0:
                    gt = go_run(model, b, s)
                    tt = torch_run()
                else:
                    tt = torch_run()
                    gt = go_run(model, b, s)
                gos.append(gt)
                tos.append(tt)
                ratios.append(tt / gt)
            q = statistics.quantiles(ratios, n=4)
            print(json.dumps({"model": model, "shape": f"b{b}x{s}", "threads": args.threads,
                              "blas": os.environ["TORCH_ANCHOR_BLAS"], "blas_libs": blas, "pairs": args.pairs, "go_median_ms": round(statistics.median(gos), 1),
                              "torch_median_ms": round(statistics.median(tos), 1),
                              "speedup_median": round(statistics.median(ratios), 3),
                              "speedup_q1": round(q[0], 3), "speedup_q3": round(q[2], 3),
                              "go_ms": [round(x) for x in gos], "torch_ms": [round(x) for x in tos]}),
                  flush=True)
    go.stdin.write("quit\n")
    go.stdin.flush()
    go.wait()


if __name__ == "__main__":
    main()
