#!/usr/bin/env bash
# genforge's GPU check (docs/gpu.md), one script under 8 minutes on one GPU:
#   1. every family's preset for STEPS optimizer steps under trainer=gpu at precision 32-true, 16-mixed and
#      bf16-mixed (manual optimization with a GradScaler: 16-mixed), then under trainer=ddp trainer.devices=1;
#   2. DCGAN images/s in genforge against benchmarks/throughput.py's bare PyTorch loop, both on the GPU;
#   3. the cached CelebA-layout loader (benchmarks/data_loading.py writes its own JPEG fixture) against the
#      DCGAN training step on the GPU.
# It prints one table (also written to $OUT/gpu_check.md, with every run's log under $OUT/logs) and exits 0
# when every row passed, 1 otherwise. Rows that would pass the time budget are skipped and say so.
#
#   bash benchmarks/gpu_check.sh                          # on a machine with a CUDA GPU
#   ACCELERATOR=cpu STEPS=2 bash benchmarks/gpu_check.sh  # smoke check of every command line on a CPU
#
# Environment: ACCELERATOR (gpu | cpu; cpu: 16-mixed runs as bf16-mixed, Lightning's rule on a CPU),
# STEPS (300: optimizer steps per run; a GAN counts 2 per batch; Deep GMM runs EM_EPOCHS EM iterations
# instead, it takes no optimizer step), EM_EPOCHS (3), OUT (outputs/gpu_check/<date>), BUDGET_S (450: no
# run goes past it), RUN_TIMEOUT_S (150 per run), PYTHON (.venv/bin/python if present, else python),
# BENCH_BATCHES (40: timed throughput batches), LOADER_IMAGES (2000: JPEGs of the loader benchmark).
set -u
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-$([ -x .venv/bin/python ] && echo .venv/bin/python || echo python)}
ACCELERATOR=${ACCELERATOR:-gpu}
STEPS=${STEPS:-300}
EM_EPOCHS=${EM_EPOCHS:-3}
OUT=${OUT:-outputs/gpu_check/$(date +%Y-%m-%d_%H-%M-%S)}
BUDGET_S=${BUDGET_S:-450}
RUN_TIMEOUT_S=${RUN_TIMEOUT_S:-150}
BENCH_BATCHES=${BENCH_BATCHES:-40}
LOADER_IMAGES=${LOADER_IMAGES:-2000}
export WANDB_MODE=offline
mkdir -p "$OUT/logs" "$OUT/runs"
ROWS="$OUT/rows.tsv"
: > "$ROWS"
START=$(date +%s)

if [ "$ACCELERATOR" = gpu ]; then
  GPU=$(nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null | head -1)
  WORKERS=$(( $(nproc) > 9 ? 8 : $(nproc) - 1 ))
else
  GPU="none (ACCELERATOR=cpu smoke check)"
  WORKERS=1
fi
LOADER_WORKERS=${LOADER_WORKERS:-"0 $WORKERS"}
TORCH=$("$PYTHON" -c "import torch, pytorch_lightning as pl; print(f'torch {torch.__version__}, cuda {torch.version.cuda}, lightning {pl.__version__}')" 2>&1 | tail -1)

# the time left before BUDGET_S, in whole seconds (0 when spent)
left() { local t=$(( BUDGET_S - ($(date +%s) - START) )); echo $(( t > 0 ? t : 0 )); }

# one training run: run <name> <overrides...>; appends "name, status, seconds, steps, metrics" to $ROWS
run() {
  local name=$1; shift
  local limit; limit=$(left); limit=$(( limit < RUN_TIMEOUT_S ? limit : RUN_TIMEOUT_S ))
  if [ "$limit" -lt 10 ]; then
    printf '%s\tskipped (time budget)\t-\t-\t-\n' "$name" >> "$ROWS"; return
  fi
  local dir="$OUT/runs/$name" log="$OUT/logs/$name.log" t0 rc
  echo "[$(( $(date +%s) - START )) s] $name: python train.py $* (limit ${limit} s)"
  t0=$(date +%s.%N)
  timeout --signal=TERM --kill-after=15 "$limit" "$PYTHON" train.py "$@" logger=csv "hydra.run.dir=$dir" \
    > "$log" 2>&1
  rc=$?
  "$PYTHON" - "$name" "$rc" "$t0" "$dir" "$log" >> "$ROWS" <<'EOF'
import csv, math, sys, time
from pathlib import Path
name, rc, t0, run, log = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), Path(sys.argv[4]), Path(sys.argv[5])
seconds = time.time() - t0
last, step = {}, "-"
for path in run.rglob("metrics.csv"):
    with open(path) as f:
        for row in csv.DictReader(f):
            last.update({k: float(v) for k, v in row.items() if v not in ("", None)})
if "step" in last:
    step = str(int(last.pop("step")))
last.pop("epoch", None)
losses = {k: v for k, v in last.items() if k.startswith(("train/", "val/", "test/")) and "loss" in k
          or k.endswith(("fid", "l1", "log_likelihood", "bits_per_dim"))}
bad = [k for k, v in last.items() if not math.isfinite(v)]
lines = log.read_text(errors="replace").splitlines()
if rc in (124, 137):
    status = "FAIL: timed out"
elif rc != 0:
    error = next((l for l in lines if l.startswith("Error:")), None) or next(
        (l for l in reversed(lines) if "Error" in l or "error" in l), f"exit {rc}")
    status = f"FAIL: {error.strip()[:160]}"
elif bad:
    status = f"FAIL: non-finite {', '.join(bad[:3])}"
elif not last:
    status = "FAIL: no metrics.csv"
else:
    status = "ok"
first = sorted(losses.items(), key=lambda kv: (not kv[0].startswith("train/"), kv[0]))[:5]  # train losses first
shown = ", ".join(f"{k} {v:.4g}" for k, v in first)
print(f"{name}\t{status}\t{seconds:.0f}\t{step}\t{shown or '-'}")
EOF
  tail -1 "$ROWS" | cut -f1-4
}

# a benchmark script: bench <name> <command...>; its table is kept in the log and the row
bench() {
  local name=$1; shift
  local limit; limit=$(left); limit=$(( limit < 2 * RUN_TIMEOUT_S ? limit : 2 * RUN_TIMEOUT_S ))
  if [ "$limit" -lt 20 ]; then
    printf '%s\tskipped (time budget)\t-\t-\t-\n' "$name" >> "$ROWS"; return
  fi
  local log="$OUT/logs/$name.log" t0 rc
  echo "[$(( $(date +%s) - START )) s] $name: $* (limit ${limit} s)"
  t0=$(date +%s)
  timeout --signal=TERM --kill-after=15 "$limit" "$@" > "$log" 2>&1
  rc=$?
  local status="ok"
  [ $rc -ne 0 ] && status="FAIL: exit $rc ($(grep -m1 -E 'Error|error' "$log" | cut -c1-150))"
  # the benchmark's own table rows, joined into the result column
  local result; result=$(grep -E '^\| (bare|genforge|cached loader|uncached loader|DCGAN)' "$log" | cut -d'|' -f2,3 \
    | sed 's/  */ /g; s/ | /: /' | paste -sd';' -)
  printf '%s\t%s\t%s\t-\t%s\n' "$name" "$status" "$(( $(date +%s) - t0 ))" "${result:--}" >> "$ROWS"
  tail -1 "$ROWS" | cut -f1-3
}

# every run: validation and test cut to 4 batches, the evaluation callbacks to small sample counts (this
# checks that the runs work, it does not rank them), no sanity check, no scikit-learn GMM baseline (CPU)
COMMON=("trainer.accelerator=$ACCELERATOR" "trainer.max_epochs=-1" "trainer.limit_val_batches=4"
        "trainer.limit_test_batches=4" "trainer.num_sanity_val_steps=0" "callbacks.evaluation.feature_epochs=1"
        "callbacks.evaluation.num_samples=500" "callbacks.parzen.num_samples=1000" "callbacks.gmm_baseline=null")
# preset -> its overrides: STEPS optimizer steps; Deep GMM takes none (hard EM), so EM_EPOCHS EM iterations;
# DC-IGN renders its faces in WORKERS data workers
declare -A PRESETS=(
  [gan]="model=gan data=mnist5k trainer.max_steps=$STEPS"
  [dcgan]="model=dcgan data=mnist5k trainer.max_steps=$STEPS"
  [colorizer_l1]="model=colorizer_l1 data=photos trainer.max_steps=$STEPS"
  [dcign]="model=dcign data=faces3d trainer.max_steps=$STEPS data.num_workers=$WORKERS"
  [deep_gmm]="model=deep_gmm data=patches trainer.max_steps=-1 trainer.max_epochs=$EM_EPOCHS"
  [gated_pixelcnn]="model=gated_pixelcnn data=mnist5k trainer.max_steps=$STEPS"
)
ORDER=(dcgan gan colorizer_l1 dcign deep_gmm gated_pixelcnn)

for precision in bf16-mixed 16-mixed 32-true; do
  for preset in "${ORDER[@]}"; do
    # shellcheck disable=SC2086  # the preset's overrides are words
    run "$preset-$precision" trainer=gpu "${COMMON[@]}" ${PRESETS[$preset]} "trainer.precision=$precision"
  done
done
bench throughput "$PYTHON" benchmarks/throughput.py --accelerator "$ACCELERATOR" --batches "$BENCH_BATCHES" \
  --rounds 2 --batch-size 128
# shellcheck disable=SC2086  # LOADER_WORKERS is a list
bench cached_loader "$PYTHON" benchmarks/data_loading.py --accelerator "$ACCELERATOR" --images "$LOADER_IMAGES" \
  --repeats 1 --workers $LOADER_WORKERS --steps 20 --root "$OUT/data_loading"
for preset in "${ORDER[@]}"; do
  # shellcheck disable=SC2086
  run "$preset-ddp" trainer=ddp trainer.devices=1 "${COMMON[@]}" ${PRESETS[$preset]} "trainer.precision=32-true"
done

TOTAL=$(( $(date +%s) - START ))
"$PYTHON" - "$ROWS" "$OUT/gpu_check.md" "$GPU" "$TORCH" "$TOTAL" "$STEPS" "$ACCELERATOR" <<'EOF'
import datetime, sys
rows_file, out, gpu, torch_line, total, steps, accelerator = sys.argv[1:]
rows = [line.rstrip("\n").split("\t") for line in open(rows_file) if line.strip()]
lines = [f"genforge GPU check, {datetime.date.today().isoformat()}: GPU {gpu or '?'}; {torch_line}; "
         f"accelerator={accelerator}, {steps} steps per run; {total} s in all",
         "", "| run | status | s | last logged step | last values (train losses, then val/test metrics) / images/s |",
         "|---|---|---|---|---|"]
lines += ["| " + " | ".join(cells + ["-"] * (5 - len(cells))) + " |" for cells in rows]
failed = [r[0] for r in rows if not r[1].startswith("ok")]
lines += ["", f"{len(rows) - len(failed)} of {len(rows)} rows ok" + (f"; not ok: {', '.join(failed)}" if failed else "")]
text = "\n".join(lines)
print(text)
open(out, "w").write(text + "\n")
sys.exit(1 if failed else 0)
EOF
status=$?
echo "table: $OUT/gpu_check.md; logs: $OUT/logs/"
exit $status
