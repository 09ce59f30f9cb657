#!/usr/bin/env bash
# Two MultiWorkerMirroredStrategy workers on this machine (127.0.0.1), tiny model, a few steps.
# On real machines: same command on each host, with TF_CONFIG listing every host:port and the
# host's own index, and a --out directory of its own (each worker writes its run there).
#   usage: examples/two_workers.sh [CORPUS]   (default: brown)
set -euo pipefail
cd "$(dirname "$0")/.."
corpus=${1:-brown}
kblm=${KBLM:-.venv/bin/kblm}
cluster='{"worker": ["127.0.0.1:23456", "127.0.0.1:23457"]}'
rm -rf runs/two-workers  # this example's own output from an earlier run
mkdir -p runs/two-workers
pids=()
for index in 0 1; do
  TF_CONFIG="{\"cluster\": $cluster, \"task\": {\"type\": \"worker\", \"index\": $index}}" \
    "$kblm" train --corpus "$corpus" --preset tiny --strategy multi_worker --epochs 2 \
      --steps-per-epoch 20 --out "runs/two-workers/worker$index" > "runs/two-workers/worker$index.log" 2>&1 &
  pids+=($!)
done
status=0
for pid in "${pids[@]}"; do wait "$pid" || status=$?; done
tail -n 1 runs/two-workers/worker0.log runs/two-workers/worker1.log
exit $status
