#!/usr/bin/env bash
# coopjax on a Cloud TPU pod slice: create the TPU VMs (optional), install
# coopjax on every worker, and run the same command on all of them.
#
#   launch/tpu_pod.sh create  NAME ZONE ACCELERATOR   # e.g. my-pod us-central2-b v4-32
#   launch/tpu_pod.sh install NAME ZONE
#   launch/tpu_pod.sh run     NAME ZONE configs/cifar10.py /gcs/BUCKET/runs/cifar10 [flags...]
#   launch/tpu_pod.sh stop    NAME ZONE               # SIGTERM: every host saves, exits 75
#   launch/tpu_pod.sh delete  NAME ZONE
#
# Assumes: gcloud is authenticated with a default project; the TPU VM image
# has Python >= 3.10; this repository is reachable from the workers at
# REPO_URL (default: a tarball of this checkout copied with scp); the workdir
# is a path every worker sees, e.g. a bucket mounted with gcsfuse at
# /gcs/BUCKET on each worker (set GCS_BUCKET and `install` mounts it). On the workers
# COOPJAX_DISTRIBUTED=1 makes coopjax call jax.distributed.initialize(),
# which finds the coordinator, process count and id from the TPU metadata.
set -euo pipefail
CMD=${1:?usage: $0 create|install|run|stop|delete NAME ZONE ...}
NAME=${2:?TPU name}
ZONE=${3:?zone}
shift 3
VERSION=${TPU_SOFTWARE_VERSION:-tpu-ubuntu2204-base}
on_all() {
  gcloud compute tpus tpu-vm ssh "$NAME" --zone="$ZONE" --worker=all --command="$1"
}
case $CMD in
  create)
    ACCEL=${1:?accelerator type, e.g. v4-32}
    gcloud compute tpus tpu-vm create "$NAME" --zone="$ZONE" \
      --accelerator-type="$ACCEL" --version="$VERSION"
    ;;
  install)
    if [[ -n ${REPO_URL:-} ]]; then
      on_all "rm -rf coopjax && git clone --depth=1 '$REPO_URL' coopjax"
    else
      tar czf /tmp/coopjax_src.tgz --exclude=.git --exclude=.venv --exclude=runs \
        -C "$(dirname "$0")/.." .
      gcloud compute tpus tpu-vm scp /tmp/coopjax_src.tgz "$NAME":~/ \
        --zone="$ZONE" --worker=all
      on_all "rm -rf coopjax && mkdir coopjax && tar xzf coopjax_src.tgz -C coopjax"
    fi
    on_all "cd coopjax && python3 -m venv .venv && . .venv/bin/activate && \
      pip install -U pip && pip install 'jax[tpu]' -e '.[data]'"
    if [[ -n ${GCS_BUCKET:-} ]]; then
      on_all "sudo mkdir -p /gcs/$GCS_BUCKET && sudo chown \$USER /gcs/$GCS_BUCKET && \
        (mountpoint -q /gcs/$GCS_BUCKET || gcsfuse --implicit-dirs $GCS_BUCKET /gcs/$GCS_BUCKET)"
    fi
    ;;
  run)
    CONFIG=${1:?config file}; WORKDIR=${2:?workdir, e.g. /gcs/BUCKET/runs/x}
    shift 2
    # nohup: the run survives a dropped ssh session; logs in ~/coopjax.log.
    on_all "cd coopjax && . .venv/bin/activate && COOPJAX_DISTRIBUTED=1 \
      nohup python -m coopjax.main --config=$CONFIG --workdir=$WORKDIR $* \
      > ~/coopjax.log 2>&1 &"
    echo "Started on all workers; follow with:"
    echo "  gcloud compute tpus tpu-vm ssh $NAME --zone=$ZONE --worker=0 --command='tail -f ~/coopjax.log'"
    ;;
  stop)
    on_all "pkill -TERM -f '^python -m coopjax.main' || true"
    ;;
  delete)
    gcloud compute tpus tpu-vm delete "$NAME" --zone="$ZONE" --quiet
    ;;
  *)
    echo "unknown command $CMD; expected create, install, run, stop or delete" >&2
    exit 2
    ;;
esac
