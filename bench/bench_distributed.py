"""Distributed training throughput (JAX): 1 vs 2 logical devices and 1 vs 2 processes, graphspec against
hand-written Keras doing the same distribution.

Every configuration runs in fresh processes (a process fixes its JAX device count when JAX starts):

- graphspec: `graphspec train SPEC --backend jax` (1 device), `... --distribute data-parallel --devices 2`
  (2 logical devices), `graphspec launch --local 2 -- train SPEC --backend jax` (2 processes);
- hand-written: `keras.distribution.DataParallel` (with `keras.distribution.initialize` and gloo for 2
  processes), the same model (built from the same spec), the same global batch, each process fitting its
  half of every global batch, `model.fit(..., shuffle=False, verbose=0)`; graphspec runs with
  `data.shuffle=false`, the same order.

Samples/s = training samples / the median epoch time after the first epoch (which compiles). A 1-device
epoch of the default lasts about 0.1 s: 7 timed epochs a run, not 3 (one loaded epoch moved a 3-epoch
median by up to 25 %). Ratios:
each configuration against single-device graphspec, and graphspec against hand-written Keras in the same
configuration. On a CPU, logical devices share the same cores: the figures measure the overhead of the
distribution machinery, not a speed-up (that needs accelerators or hosts).

    .venv/bin/python bench/bench_distributed.py [--spec specs/mnist_mlp.yaml] [--samples 16384]
                                                [--epochs 8] [--batch-size 128] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

HAND = r"""
import json, os, sys, time
pid, nproc, port, spec, sets_json = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
sys.path.insert(0, os.environ["GRAPHSPEC_ROOT"])
import jax
import keras
import numpy as np
if nproc > 1:
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    keras.distribution.initialize(f"127.0.0.1:{port}", nproc, pid)
devices = keras.distribution.list_devices()
if len(devices) > 1:
    dist = keras.distribution.DataParallel(devices=devices)
    dist.auto_shard_dataset = False
    keras.distribution.set_distribution(dist)
from graphspec import compiler
from graphspec.run import data as data_mod, models
sets = json.loads(sets_json)
checked = models.check(spec, sets=sets)
name = models.pick_model(checked, None)
keras.utils.set_random_seed(0)
model = compiler.build(checked, models=[name])[name]
io_ = models.model_io(checked, name, model)
data = data_mod.prepare(checked.spec.data, io_, base_dir=ROOT_DIR, seed=0, graph=checked.graph,
                        locate=lambda p: checked.source.location(p))
x = data.train.inputs[io_.inputs[0].name]; y = data.train.outputs[io_.outputs[0].name]
batch = checked.spec.data.batch_size
n = len(x) - len(x) % batch
# each process: its half of every global batch, in order
idx = np.arange(n).reshape(-1, batch)[:, pid * batch // nproc:(pid + 1) * batch // nproc].ravel()
times = []
class T(keras.callbacks.Callback):
    def on_epoch_begin(self, e, logs=None): self.t = time.perf_counter()
    def on_epoch_end(self, e, logs=None): times.append(time.perf_counter() - self.t)
model.fit(x[idx], y[idx], batch_size=batch // nproc, epochs=EPOCHS, shuffle=False, verbose=0, callbacks=[T()])
if pid == 0:
    print("TIMES", json.dumps(times))
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _env(devices: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KERAS_DISTRIBUTION")}
    env.update(PYTHONPATH=str(ROOT), KERAS_BACKEND="jax", TF_CPP_MIN_LOG_LEVEL="3", GRAPHSPEC_ROOT=str(ROOT),
               XLA_FLAGS=f"--xla_force_host_platform_device_count={devices}")
    return env


def _rate(times: list[float], samples: int) -> float:
    return samples / statistics.median(times[1:] if len(times) > 1 else times)


def graphspec_rate(args: argparse.Namespace, sets: list[str], mode: str, work: Path) -> float:
    folder = work / f"gs-{mode}"
    folder.mkdir(parents=True)
    train = ["train", args.spec, "--backend", "jax", *[a for s in sets for a in ("--set", s)]]
    if mode == "1 device":
        cmd = [sys.executable, "-m", "graphspec", *train]
    elif mode == "2 devices":
        cmd = [sys.executable, "-m", "graphspec", *train, "--distribute", "data-parallel", "--devices", "2"]
    else:
        cmd = [sys.executable, "-m", "graphspec", "launch", "--local", "2", "--", *train]
    proc = subprocess.run(cmd, cwd=folder, env=_env(1), capture_output=True, text=True, timeout=1800)
    if proc.returncode != 0:
        raise SystemExit(f"{mode}: graphspec failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    (run,) = [p for p in (folder / "runs").glob("*/*") if p.is_dir()]
    history = json.loads((run / "history.json").read_text())
    return _rate([row["time"] for row in history], args.samples_train)


def hand_rate(args: argparse.Namespace, sets: list[str], mode: str) -> float:
    script = HAND.replace("EPOCHS", str(args.epochs)).replace("ROOT_DIR", repr(str(ROOT)))
    nproc, devices = (2, 1) if mode == "2 processes" else (1, 2 if mode == "2 devices" else 1)
    port = str(_free_port())
    procs = [subprocess.Popen([sys.executable, "-c", script, str(i), str(nproc), port, args.spec, json.dumps(sets)],
                              env=_env(devices), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for i in range(nproc)]
    outs = [p.communicate(timeout=1800) for p in procs]
    if any(p.returncode for p in procs):
        raise SystemExit(f"{mode}: hand-written Keras failed:\n" + "\n".join(o[1][-2000:] for o in outs))
    line = next(s for s in outs[0][0].splitlines() if s.startswith("TIMES"))
    return _rate(json.loads(line.split(" ", 1)[1]), args.samples_train)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--spec", default=str(ROOT / "specs" / "mnist_mlp.yaml"))
    parser.add_argument("--samples", type=int, default=16384)
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    args.spec = str(Path(args.spec).resolve())
    args.samples_train = args.samples - args.samples % args.batch_size
    sets = [f"data.source={{kind: synthetic, samples: {args.samples}, test_samples: 256}}",
            f"data.batch_size={args.batch_size}", "data.validation_split=0", f"train.epochs={args.epochs}",
            "train.seed=0", "train.early_stopping=", "train.reduce_lr_on_plateau=", "train.lr_schedule=",
            "train.tensorboard=false",
            # The hand-written side feeds each process its part of every global batch in a fixed order
            # (fit(..., shuffle=False)): graphspec feeds the same order, so both sides do the same work (a
            # per-epoch shuffle gathers every batch from a permutation: a copy the hand side never makes).
            "data.shuffle=false"]
    work = Path(tempfile.mkdtemp(prefix="bench_distributed_"))
    modes = ["1 device", "2 devices", "2 processes"]
    # Rounds: each runs both sides of every configuration, the side that starts alternating; a figure is the
    # median over rounds (one loaded run must not read as the figure).
    samples: dict[str, list[tuple[float, float]]] = {m: [] for m in modes}
    for r in range(args.rounds):
        for m in modes:
            if r % 2:
                hand = hand_rate(args, sets, m)
                gs = graphspec_rate(args, sets, m, work / f"r{r}")
            else:
                gs = graphspec_rate(args, sets, m, work / f"r{r}")
                hand = hand_rate(args, sets, m)
            samples[m].append((gs, hand))
            print(f"  round {r + 1} {m}: graphspec {gs:.0f}/s, keras {hand:.0f}/s, ratio {gs / hand:.3f}", flush=True)
    rows = {m: (statistics.median(g for g, _ in v), statistics.median(h for _, h in v),
                statistics.median(g / h for g, h in v)) for m, v in samples.items()}
    base = rows["1 device"][0]
    print(f"{Path(args.spec).name}: {args.samples_train} samples, global batch {args.batch_size}, {args.epochs} "
          f"epochs, JAX on CPU ({os.cpu_count()} cores; no GPU in this run), median of {args.rounds} rounds")
    print(f"{'configuration':<14} {'graphspec/s':>12} {'keras/s':>10} {'vs 1-device gs':>15} {'gs / keras':>11} "
          f"{'rounds from .. to':>18}")
    for m, (gs, hand, ratio) in rows.items():
        spread = [g / h for g, h in samples[m]]  # wider than the target's margin: the machine decided, not graphspec
        print(f"{m:<14} {gs:>12.0f} {hand:>10.0f} {gs / base:>15.2f} {ratio:>11.2f} "
              f"{min(spread):>9.2f} .. {max(spread):<5.2f}")
        from figures import record

        record("distributed", f"{m}: samples/s graphspec / keras", ratio, ">= 0.95", met=ratio >= 0.95)
    return 0


if __name__ == "__main__":
    sys.exit(main())
