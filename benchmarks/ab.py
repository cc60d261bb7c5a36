"""Interleaved A/B of two hiddenlab builds' hlbench children (Go alone).

Usage: ab.py <rounds> <threads> <dir A> <hlbench A> <dir B> <hlbench B> <case> [<case> ...]
  e.g. ab.py 4 1 /tmp/before /tmp/before/hlbench . ./hlbench codebook:vanilla codebook:codebook

For each round and case, runs `<hlbench> -child <case> -threads <threads>` of both builds, each
in its own tree (where it finds its shim), the order alternating by round so that slow drifts of
a shared host hit both alike; prints each case's median [min, max] step time and B/A.
"""
import json
import statistics
import subprocess
import sys


def main():
    rounds, threads = int(sys.argv[1]), sys.argv[2]
    builds = {"A": (sys.argv[3], sys.argv[4]), "B": (sys.argv[5], sys.argv[6])}
    cases = sys.argv[7:]
    ms = {(c, b): [] for c in cases for b in builds}
    for r in range(rounds):
        for c in cases:
            for b in (["A", "B"] if r % 2 == 0 else ["B", "A"]):
                cwd, exe = builds[b]
                out = subprocess.run([exe, "-child", c, "-threads", threads], cwd=cwd, capture_output=True, text=True)
                if out.returncode != 0:
                    sys.exit(f"{b} {c}: {out.stderr.strip()[-500:]}")
                ms[(c, b)].append(json.loads(out.stdout)["step_s"] * 1e3)
    print(f"threads {threads}, {rounds} rounds, ms per step: median [min, max]")
    for c in cases:
        a, b = ms[(c, "A")], ms[(c, "B")]
        ma, mb = statistics.median(a), statistics.median(b)
        print(f"{c:28s} A {ma:8.1f} [{min(a):.1f}, {max(a):.1f}]  B {mb:8.1f} [{min(b):.1f}, {max(b):.1f}]  B/A {mb / ma:.3f}")


if __name__ == "__main__":
    main()
