#!/usr/bin/env python3
"""Mutation testing: plants each one-line bug of scripts/mutations.json, one at a time, rebuilds,
runs the test targets the mutation names, and reports whether the suite caught it (killed) or not
(survived). The working tree is restored after every mutation, also on failure or Ctrl-C.

    python3 scripts/mutation_test.py [--only SUBSTRING] [--list FILE]

A mutation whose `find` text is not in its file exactly once, or that does not compile, is
reported as invalid and left out of the kill rate. Takes about a minute per mutation on 2 cores.
"""
import argparse, json, os, subprocess, sys, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run(command, timeout):
    try:
        result = subprocess.run(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=timeout)
        return result.returncode, result.stdout
    except subprocess.TimeoutExpired:
        return None, "timed out"


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--list", default=os.path.join(ROOT, "scripts", "mutations.json"))
    parser.add_argument("--only", help="run the mutations whose name contains this text")
    args = parser.parse_args()
    mutations = json.load(open(args.list))
    if args.only:
        mutations = [m for m in mutations if args.only in m["name"]]
    code, out = run(["swift", "build", "--build-tests"], 1800)
    if code != 0:
        sys.exit("the unmutated tree does not build:\n" + out[-2000:])
    results = []
    for m in mutations:
        path = os.path.join(ROOT, m["file"])
        original = open(path, encoding="utf-8").read()
        count = original.count(m["find"])
        if count != 1:
            results.append((m["name"], "invalid", f"`find` occurs {count} times in {m['file']}"))
            continue
        start = time.time()
        try:
            with open(path, "w", encoding="utf-8") as f:
                f.write(original.replace(m["find"], m["replace"]))
            code, out = run(["swift", "build", "--build-tests"], 1800)
            if code != 0:
                results.append((m["name"], "invalid", "does not compile"))
                continue
            pattern = "|".join(f"^{t}\\." for t in m.get("targets", [])) or "."
            code, out = run(["swift", "test", "--skip-build", "--filter", pattern], 1800)
            failed = [line.strip() for line in out.splitlines() if line.lstrip().startswith("✘ Test") and "recorded an issue" in line]
            status = "killed" if code != 0 else "SURVIVED"
            detail = (failed[0][:160] if failed else ("exit status %s" % code if code else "")) + f" ({time.time() - start:.0f} s)"
            results.append((m["name"], status, detail))
        finally:
            with open(path, "w", encoding="utf-8") as f:
                f.write(original)
        print(f"{results[-1][1]:9} {m['name']}", flush=True)
    run(["swift", "build", "--build-tests"], 1800)
    valid = [r for r in results if r[1] != "invalid"]
    killed = sum(r[1] == "killed" for r in valid)
    print()
    for name, status, detail in results:
        print(f"{status:9} {name}\n          {detail}")
    if valid:
        print(f"\nkill rate: {killed} of {len(valid)} = {100 * killed / len(valid):.0f}%"
              + (f" ({len(results) - len(valid)} invalid)" if len(results) > len(valid) else ""))
    sys.exit(0 if killed == len(valid) else 1)


if __name__ == "__main__":
    main()
