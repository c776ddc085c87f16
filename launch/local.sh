#!/usr/bin/env bash
# Starts N coopjax processes on this machine (127.0.0.1), each with D fake CPU
# devices, as a multi-host run would: for testing the multi-host code paths.
#
#   launch/local.sh N D --config=configs/checkerboard.py --workdir=/tmp/run [flags...]
#
# Process i logs to <workdir>/process_<i>.log; only process 0 writes metrics
# and samples. If any process fails, the others are stopped. SIGTERM/SIGINT
# to this script is forwarded, so every process saves and exits (code 75).
set -euo pipefail
if [[ $# -lt 3 ]]; then
  echo "usage: $0 NUM_PROCESSES DEVICES_PER_PROCESS --config=... --workdir=... [flags]" >&2
  exit 2
fi
N=$1; D=$2; shift 2
WORKDIR=""
for a in "$@"; do [[ $a == --workdir=* ]] && WORKDIR=${a#--workdir=}; done
[[ -n $WORKDIR ]] || { echo "$0: --workdir=... is required" >&2; exit 2; }
mkdir -p "$WORKDIR"
PORT=${PORT:-$(python -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')}
PYTHON=${PYTHON:-python}
pids=()
stop() { for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done; }
trap stop TERM INT
for ((i = 0; i < N; i++)); do
  XLA_FLAGS="--xla_force_host_platform_device_count=$D" JAX_PLATFORMS=cpu \
    "$PYTHON" -m coopjax.main "$@" --coordinator_address="127.0.0.1:$PORT" \
    --num_processes="$N" --process_id="$i" >"$WORKDIR/process_$i.log" 2>&1 &
  pids+=($!)
done
echo "started ${N} processes (pids ${pids[*]}); logs in $WORKDIR/process_*.log"
rc=0
for p in "${pids[@]}"; do
  code=0
  wait "$p" || code=$?
  if [[ $code -ne 0 ]]; then
    [[ $rc -eq 0 ]] && rc=$code
    [[ $code -ne 75 ]] && stop
  fi
done
exit $rc
