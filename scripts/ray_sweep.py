#!/usr/bin/env python3
"""Run the trials of an mlx sweep as Ray tasks, then collect them into sweep.json.

    python scripts/ray_sweep.py FILE.mlx --out SWEEP_DIR [--sweep NAME] [--set KEY=VALUE ...]
        [--mlx PATH] [--address ADDRESS] [--cpus-per-trial N] [--retries N]

One Ray task per trial, each running `mlx run FILE --sweep NAME --trial K --out SWEEP_DIR`;
then `mlx sweep collect SWEEP_DIR`. The sweep directory, the .mlx file, its data and the mlx
binary must be reachable at the same paths from every Ray node (a shared file system).
A trial is a pure function of the file, its data, its seed and K, so the result does not depend
on where or in which order the tasks run. A task whose mlx process dies (killed, out of memory,
node lost) is retried up to --retries times, and the new attempt resumes the trial from its
last checkpoint; a trial that fails with a diagnostic (exit status 1) is not retried. Exits with
the status of `mlx sweep collect`: 0 when every trial completed.

Needs Ray (`pip install ray`); connects to RAY_ADDRESS or --address (default: "auto", the
cluster started on this machine by `ray start --head`).
"""

import argparse
import json
import os
import subprocess
import sys


class TrialKilled(Exception):
    """The trial's mlx process ended by a signal: worth another attempt (it resumes)."""


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("file", help="the .mlx file that declares the sweep")
    p.add_argument("--out", required=True, help="the sweep's directory (created if absent)")
    p.add_argument("--sweep", help="the sweep's name (default: the file's only sweep)")
    p.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                   help="passed to every trial, as to `mlx run`")
    p.add_argument("--mlx", default=os.environ.get("MLX", "mlx"), help="the mlx binary")
    p.add_argument("--address", default=os.environ.get("RAY_ADDRESS", "auto"),
                   help="the Ray cluster (default: RAY_ADDRESS, else auto)")
    p.add_argument("--cpus-per-trial", type=int, default=1,
                   help="CPUs Ray reserves for each trial; mlx uses as many threads")
    p.add_argument("--retries", type=int, default=2,
                   help="new attempts of a trial whose process died")
    return p.parse_args(argv)


def mlx_binary(name):
    """An absolute path: Ray workers do not share the driver's working directory."""
    if os.sep in name:
        return os.path.abspath(name)
    for d in os.environ.get("PATH", "").split(os.pathsep):
        path = os.path.join(d, name)
        if os.path.isfile(path) and os.access(path, os.X_OK):
            return path
    sys.exit(f"ray_sweep: no `{name}` on PATH; name the binary with --mlx")


def main(argv):
    args = parse_args(argv)
    mlx = mlx_binary(args.mlx)
    spec = os.path.abspath(args.file)
    out = os.path.abspath(args.out)
    common = [spec] + (["--sweep", args.sweep] if args.sweep else [])
    for s in args.sets:
        common += ["--set", s]

    # The trials, numbered as mlx numbers them; a program that does not check stops here.
    listing = subprocess.run([mlx, "sweep", "list", "--json"] + common,
                             capture_output=True, text=True)
    if listing.returncode != 0:
        sys.stderr.write(listing.stderr)
        return listing.returncode
    plan = json.loads(listing.stdout)
    name = plan["sweep"]
    trials = [t["trial"] for t in plan["trials"]]

    import ray  # noqa: E402  (only once the sweep is known to check)

    ray.init(address=args.address, log_to_driver=False, logging_level="ERROR")

    @ray.remote(num_cpus=args.cpus_per_trial, max_retries=args.retries,
                retry_exceptions=[TrialKilled])
    def run_trial(k):
        cmd = [mlx, "run", spec, "--sweep", name, "--trial", str(k), "--out", out,
               "--quiet", "--no-plot"]
        for s in args.sets:
            cmd += ["--set", s]
        env = dict(os.environ, MLX_THREADS=str(max(1, args.cpus_per_trial)))
        r = subprocess.run(cmd, capture_output=True, text=True, env=env)
        if r.returncode < 0:
            raise TrialKilled(f"trial {k}: mlx ended by signal {-r.returncode}\n{r.stderr}")
        return k, r.returncode, r.stdout.strip(), r.stderr

    print(f"ray_sweep: sweep `{name}`: {len(trials)} trials as Ray tasks", file=sys.stderr)
    pending = {run_trial.remote(k): k for k in trials}
    failed = []
    while pending:
        done, _ = ray.wait(list(pending), num_returns=1)
        for ref in done:
            k = pending.pop(ref)
            try:
                k, status, trial_dir, err = ray.get(ref)
            except Exception as e:  # a task out of attempts
                failed.append(k)
                print(f"ray_sweep: trial {k} failed: {e}", file=sys.stderr)
                continue
            if status == 0:
                print(f"ray_sweep: trial {k} done: {trial_dir}", file=sys.stderr)
            else:
                failed.append(k)
                print(f"ray_sweep: trial {k} failed (exit {status}):\n{err}", file=sys.stderr)
    ray.shutdown()

    collect = subprocess.run([mlx, "sweep", "collect", out, "--quiet"])
    if failed and collect.returncode == 0:
        return 1
    return collect.returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
