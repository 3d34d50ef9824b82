#!/usr/bin/env bash
# The prepared GPU check (one GPU machine, torch with CUDA, no package index), <= 10 minutes (each step has its own timeout):
#   1. the GPU tests; 2. one time-to-BLEU run (the table gives the seconds from that process's
#   start, imports and prepare included, to its first step, to each validation BLEU and to the
#   test score); 3. a packed sweep (8 trials at 1/8 GPU) and the same trial alone. Prints one
#   table (benchmarks/gpu_report.py). Python packages come from
#   the offline bundle (.bundle/site.tar.xz, see DEVELOPERS.md / README "GPUs"), Multi30k
#   from $MULTI30K_DIR or .bundle/multi30k.
#     bash benchmarks/gpu_check.sh [train minutes, default 0.75] [packed trial minutes, default 0.75]
set -uo pipefail
cd "$(dirname "$0")/.."
MINUTES=${1:-0.75}; PACK_MINUTES=${2:-0.75}
export PYTHONUNBUFFERED=1 MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR=false
if [ -f .bundle/site.tar.xz ] && [ ! -d /tmp/site/mlflow ]; then
    mkdir -p /tmp/site && tar -xJf .bundle/site.tar.xz -C /tmp/site
fi
[ -d /tmp/site ] && export PYTHONPATH=/tmp/site:$PWD${PYTHONPATH:+:$PYTHONPATH}
export MULTI30K_DIR=${MULTI30K_DIR:-$PWD/.bundle/multi30k}
LOG=${OUT:-/tmp}/gpu-check.log
export NMT_HOME=$(mktemp -d /tmp/nmt-gpu-XXXX)
NMT=(python3 -m nmt.pipeline.cli)
start=$(date +%s)
echo "== 1. GPU tests" | tee "$LOG"
if [ "${GPU_TESTS:-run}" = skip ]; then tests="not run (GPU_TESTS=skip)"; else
    tests=$(timeout 140 python3 -m pytest -m gpu -q -p no:cacheprovider 2>&1 | tee -a "$LOG" | tail -n 1); fi
echo "$tests"
echo "== 2. time-to-BLEU: the Transformer, $MINUTES min of training, full Multi30k de-en" | tee -a "$LOG"
[ "${TIME_TO_BLEU:-run}" = skip ] || timeout 170 "${NMT[@]}" run model=transformer optim=noam profile=quick trainer.max_minutes="$MINUTES" \
    trainer.max_epochs=100 trainer.patience=100 evaluate.attention_samples=0 \
    demo_sentences=0 >> "$LOG" 2>&1 || echo "time-to-BLEU run failed (see $LOG)"
echo "== 3. packed sweep: 8 trials x 1/8 GPU, then 1 trial alone, $PACK_MINUTES min each" | tee -a "$LOG"
common=(model=transformer optim=noam trainer.max_minutes="$PACK_MINUTES" trainer.max_epochs=100
        trainer.patience=100 evaluate.splits=[test_2016_flickr] evaluate.beam_size=1 evaluate.attention_samples=0)
timeout 170 "${NMT[@]}" sweep sweep=pack "${common[@]}" >> "$LOG" 2>&1 || echo "packed sweep failed (see $LOG)"
timeout 150 "${NMT[@]}" sweep sweep=pack sweep.name=alone sweep.num_samples=1 sweep.resources.trials_per_gpu=1 \
    "${common[@]}" >> "$LOG" 2>&1 || echo "lone trial failed (see $LOG)"
echo "== table (all steps: $(( $(date +%s) - start )) s)"
python3 -m benchmarks.gpu_report --tests "$tests" | tee "${OUT:-/tmp}/gpu-check.md"
