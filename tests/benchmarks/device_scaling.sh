#!/usr/bin/env bash
# Host-CPU scaling of the emulator (`pipesdfa scale --mode emulate --cpus ...`) on a bigger
# machine (the lent 16-core device), with Ray and the emulator's deps from .device/.
#
#   OUT=/some/dir bash tests/benchmarks/device_scaling.sh
#
# Workloads (the CLI's own local Ray on 127.0.0.1, every run at each CPU count checked to give
# identical emulated results):
#   limit  nmnist-mlp3 (rate input, synthetic data, 1 epoch + evaluation) on pipesdfa-edge
#          grown to 8x8, 270 cores in one actor per CPU, beside the in-process runtime
#          (tests/benchmarks/bench_limit.py --cpus $CPUS): the paper-sized workload
# and digits data, EPOCHS training epochs + evaluation per run:
#   pe1  digits-mlp on pipesdfa-edge with pe.crossbars=1: 11 PE cores + 3 tiles = 14 actors
#   pe8  digits-mlp on pipesdfa-edge as shipped (pe.crossbars=8): 3 PE cores + 1 tile = 4 actors,
#        at CPUS_PE8 only (4 actors cannot use 16 CPUs; it shows where scaling saturates)
#   then tests/benchmarks/bench_runtimes.py --repeats 1 if time is left.
# Writes $OUT/limit.json, $OUT/scale_pe1.json, $OUT/scale_pe8.json, $OUT/bench_runtimes.txt,
# $OUT/env.txt,
# $OUT/summary.txt, $OUT/log.txt (and $OUT/ray_logs.tgz when a step fails).
#
# Environment overrides: CPUS (1,2,4,8,16), CPUS_PE8 (1,4,16), EPOCHS (5), PY (python3),
# OUT (/tmp/devout), PIPESDFA_SITE (a ready site folder; default .device/site, else
# .device/site.tar.xz unpacked to /tmp/pipesdfa-site), EXTRA_PYTHONPATH (appended),
# BUDGET_S (420: a later step is skipped when it would not fit), T_LIMIT / T_PE1 / T_PE8 / T_BENCH
# (per-step timeouts in s; GNU timeout signals the step's whole process group, Ray's
# gcs_server and raylet included), SKIP_BENCH=1.
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 2
ROOT=$PWD
OUT=${OUT:-/tmp/devout}
mkdir -p "$OUT"
PY=${PY:-python3}
CPUS=${CPUS:-1,2,4,8,16}
CPUS_PE8=${CPUS_PE8:-1,4,16}
EPOCHS=${EPOCHS:-5}
BUDGET_S=${BUDGET_S:-420}
T_LIMIT=${T_LIMIT:-240}
T_PE1=${T_PE1:-240}
T_PE8=${T_PE8:-90}
T_BENCH=${T_BENCH:-80}
START=$SECONDS
LOG=$OUT/log.txt
: >"$LOG"
FAILED=0

say() { echo "$@" | tee -a "$LOG"; }
left() { echo $((BUDGET_S - (SECONDS - START))); }

# --- the bundle -----------------------------------------------------------------------------
if [ -n "${PIPESDFA_SITE:-}" ]; then
  SITE=$PIPESDFA_SITE
elif [ -d "$ROOT/.device/site" ]; then
  SITE=$ROOT/.device/site
elif [ -f "$ROOT/.device/site.tar.xz" ]; then
  SITE=/tmp/pipesdfa-site
  if [ ! -d "$SITE/site/ray" ]; then
    rm -rf "$SITE" && mkdir -p "$SITE"
    "$PY" -c "import sys, tarfile; tarfile.open(sys.argv[1]).extractall(sys.argv[2], filter='tar')" \
      "$ROOT/.device/site.tar.xz" "$SITE" || { say "cannot unpack .device/site.tar.xz"; exit 2; }
  fi
  SITE=$SITE/site
else
  say "no .device/site or .device/site.tar.xz (carry .device)"; exit 2
fi
export PYTHONPATH=$SITE:$ROOT${EXTRA_PYTHONPATH:+:$EXTRA_PYTHONPATH}
export RAY_DISABLE_USAGE_STATS=1 RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0 PYTHONUNBUFFERED=1

# --- the machine ----------------------------------------------------------------------------
{
  echo "== $(date -u +%FT%TZ)  unpack+setup ${SECONDS}s"
  "$PY" -V
  echo "nproc: $(nproc) (all: $(nproc --all)); python os.cpu_count: $("$PY" -c 'import os; print(os.cpu_count(), len(os.sched_getaffinity(0)))')"
  uname -srm
  grep -m1 'model name' /proc/cpuinfo
  free -g | head -2
  df -h /tmp /dev/shm 2>/dev/null
  echo "PYTHONPATH=$PYTHONPATH"
  "$PY" -c "
import numpy, sklearn, ray, pydantic, msgpack, yaml, emulator.cli
print('ray', ray.__version__, ray.__file__)
print('numpy', numpy.__version__, numpy.__file__)
print('sklearn', sklearn.__version__, sklearn.__file__)
print('pydantic', pydantic.__version__, pydantic.__file__)
"
} 2>&1 | tee "$OUT/env.txt" | tee -a "$LOG"
if ! "$PY" -c "import numpy, sklearn, ray, pydantic, emulator.cli" >/dev/null 2>&1; then
  say "imports fail: see env.txt"; exit 2
fi

# One sweep: NAME TIMEOUT ARGS...; its JSON (stdout minus Ray's warnings) to $OUT/NAME.json.
scale() {
  local name=$1 limit=$2
  shift 2
  if [ "$(left)" -lt "$((limit / 2))" ]; then
    say "== $name: skipped (only $(left)s of the budget left)"; return
  fi
  [ "$limit" -gt "$(left)" ] && limit=$(left)
  say "== $name (timeout ${limit}s): $PY -m emulator.cli scale $*"
  local t0=$SECONDS raw=/tmp/pipesdfa-$name.stdout
  timeout -k 10 "$limit" "$PY" -m emulator.cli scale "$@" >"$raw" 2>>"$LOG"
  local rc=$?
  say "   rc=$rc  $((SECONDS - t0))s"
  # Ray's raylet writes its warnings to stdout: the JSON object starts at the first line "{".
  "$PY" - "$raw" "$OUT/$name.json" >>"$LOG" 2>&1 <<'EOF'
import sys
text = open(sys.argv[1]).read()
start = 0 if text.startswith("{") else text.find("\n{\n") + 1
if start or text.startswith("{"):
    open(sys.argv[2], "w").write(text[start:])
print(text[:start], end="")
EOF
  if [ $rc -ne 0 ]; then FAILED=1; fi
}

say "== limit (timeout ${T_LIMIT}s): bench_limit.py --skip-reference --cpus $CPUS"
t0=$SECONDS
timeout -k 10 "$T_LIMIT" "$PY" tests/benchmarks/bench_limit.py --skip-reference --cpus "$CPUS" \
  --json >"$OUT/limit.json" 2>>"$LOG"
rc=$?
say "   rc=$rc  $((SECONDS - t0))s"
if [ $rc -ne 0 ]; then FAILED=1; fi

scale scale_pe1 "$T_PE1" --mode emulate --chip pipesdfa-edge --network digits-mlp \
  --set pe.crossbars=1 --cpus "$CPUS" --epochs "$EPOCHS" --json
scale scale_pe8 "$T_PE8" --mode emulate --chip pipesdfa-edge --network digits-mlp \
  --set pe.crossbars=8 --cpus "$CPUS_PE8" --epochs "$EPOCHS" --json

if [ "${SKIP_BENCH:-0}" = 1 ]; then
  say "== bench_runtimes: skipped (SKIP_BENCH=1)"
elif [ "$(left)" -lt "$T_BENCH" ]; then
  say "== bench_runtimes: skipped (only $(left)s of the budget left)"
else
  say "== bench_runtimes --repeats 1 (timeout ${T_BENCH}s)"
  t0=$SECONDS
  timeout -k 10 "$T_BENCH" "$PY" tests/benchmarks/bench_runtimes.py --repeats 1 \
    >"$OUT/bench_runtimes.txt" 2>>"$LOG"
  rc=$?
  say "   rc=$rc  $((SECONDS - t0))s"
  grep -v 'WARNING\|worker processes have been started' "$OUT/bench_runtimes.txt" | tee -a "$LOG"
  if [ $rc -ne 0 ]; then FAILED=1; fi
fi

# --- the table ------------------------------------------------------------------------------
"$PY" - "$OUT" <<'EOF' 2>&1 | tee "$OUT/summary.txt" | tee -a "$LOG"
import json, os, sys
out = sys.argv[1]
try:
    limit = json.load(open(os.path.join(out, "limit.json")))
    print(f"limit: {limit['network']} on {limit['chip']}, same weights: {limit['same_weights']}")
    for name, row in limit["runs"].items():
        print(f"  {name:<10} {row['wall_s']:8.2f} s  loop {row.get('loop_s', 0):7.2f} s  "
              f"{row.get('vs_first_count', 1):5.2f}x the first count  "
              f"{row.get('vs_in_process', 1):5.2f}x in-process")
except (OSError, ValueError, KeyError) as err:
    print(f"limit: no result ({err.__class__.__name__})")
print(f"{'workload':<10} {'cores':>5} {'cpus':>4} {'wall s':>8} {'speedup':>7} {'effic.':>6} "
      f"{'identical':>9}")
for name in ("scale_pe1", "scale_pe8"):
    path = os.path.join(out, name + ".json")
    try:
        result = json.load(open(path))
    except (OSError, ValueError) as err:
        print(f"{name:<10} no result ({err.__class__.__name__})")
        continue
    for point in result["points"]:
        cores = point.get("actors", "?")
        scaling = point.get("cpu_scaling", {"runs": []})
        for r in scaling["runs"]:
            print(f"{name:<10} {cores:>5} {r['cpus']:>4} {r['wall_s']:>8.2f} "
                  f"{r['wall_speedup']:>7.2f} {r['parallel_efficiency']:>6.2f} "
                  f"{'yes' if r['identical'] else 'NO':>9}")
        print(f"{'':<10} {point.get('label', '')}: test accuracy {point.get('test_accuracy')}, "
              f"emulated cycles {point.get('cycles')}, all identical: {scaling.get('identical')}")
EOF
if [ $FAILED -ne 0 ] && [ -d /tmp/ray/session_latest/logs ]; then
  tar -czf "$OUT/ray_logs.tgz" -C /tmp/ray/session_latest logs 2>/dev/null
fi
say "== done in $((SECONDS - START))s (failed steps: $FAILED)"
exit $FAILED
