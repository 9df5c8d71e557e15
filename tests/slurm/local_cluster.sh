#!/usr/bin/env bash
# A single-node SLURM cluster on this machine, for testing the slurm profile end to end.
#
#   local_cluster.sh check          can a cluster be brought up here? (exit 3 + reason if not)
#   local_cluster.sh install        apt-get install the SLURM and MUNGE packages if missing
#   local_cluster.sh up RUNDIR      start munged, slurmctld and slurmd; wait until the node is idle
#   local_cluster.sh down RUNDIR    cancel remaining jobs, stop the daemons by the PIDs in RUNDIR
#   local_cluster.sh info           sinfo and squeue of the running cluster
#
# Environment: LOCAL_CLUSTER_GPUS=N (default 0) declares N GPUs on the node, see below;
# PYTHON (default python3) is used to find free TCP ports.
#
# Everything the cluster writes lives in RUNDIR (state, spool, logs, its own MUNGE key and socket,
# TCP ports picked free at start) except its config files, which cannot move: inside a job the slurm
# executor runs `srun` with every SLURM_* variable removed (SLURM_CONF too), so srun only finds the
# default path /etc/slurm/slurm.conf. That file (and gres.conf with GPUs) starts with a marker line
# naming RUNDIR and is removed by `down`; a file there without the marker is never touched (`check`
# reports it and the test is skipped). Every daemon is started here, recorded in RUNDIR/*.pid and
# stopped by that PID; nothing else on the machine is signalled.
#
# GPUs: the node has none, but `LOCAL_CLUSTER_GPUS=N` declares N as a GRES backed by null devices.
# SLURM then schedules jobs submitted with `--gpus=1` exactly as on a GPU node (and sets
# CUDA_VISIBLE_DEVICES); with no CUDA driver, PyTorch finds no device and the job runs on the CPU.
#
# Job status: the slurm profile polls with squeue, which shows a finished job for MinJobAge seconds. Here
# MinJobAge is 1800 s (SLURM's default is 300), so that after a run of several minutes the test can still
# read every job's final state from squeue (there is no accounting database for sacct).
#
# Needs root (the daemons run as root, munged as user munge) and Debian's packages
# slurmctld slurmd slurm-client munge. Exit status 3 means "cannot run here", with the reason on
# stdout; any other non-zero status is an error (details on stderr).
set -Eeuo pipefail

CONF_DIR=/etc/slurm
CONF=$CONF_DIR/slurm.conf
GRES_CONF=$CONF_DIR/gres.conf
MARKER="# lesionbench local test cluster, run dir:"
PACKAGES=(slurmctld slurmd slurm-client munge)
BINARIES=(munged slurmctld slurmd sbatch squeue sinfo scontrol scancel srun)
APT_LOG=/tmp/lesionbench-slurm-apt.log

cannot() { echo "$*"; exit 3; }
log() { echo "local_cluster: $*" >&2; }

missing_binaries() {
    local b missing=()
    for b in "${BINARIES[@]}"; do
        command -v "$b" >/dev/null 2>&1 || [ -x "/usr/sbin/$b" ] || missing+=("$b")
    done
    echo "${missing[*]:-}"
}

is_ours() { [ -f "$1" ] && head -n 1 "$1" | grep -qF "$MARKER"; }
run_dir_of() { head -n 1 "$1" | sed "s|^$MARKER ||"; }

cmd_check() {
    [ "$(id -u)" -eq 0 ] \
        || cannot "not root: a local SLURM cluster needs root to start slurmctld, slurmd and munged"
    if [ -n "$(missing_binaries)" ] && ! command -v apt-get >/dev/null 2>&1; then
        cannot "SLURM is not installed (missing: $(missing_binaries)) and apt-get is not available"
    fi
    local f
    for f in "$CONF" "$GRES_CONF"; do
        if [ -f "$f" ] && ! is_ours "$f"; then
            cannot "$f exists and was not written by this test; not overwriting a real SLURM configuration"
        fi
    done
    echo "ok"
}

cmd_install() {
    cmd_check >/dev/null
    if [ -z "$(missing_binaries)" ]; then
        echo "already installed"
        return 0
    fi
    export DEBIAN_FRONTEND=noninteractive
    # A missing or stale package list makes the install fail; refresh it once and retry.
    if ! apt-get install -y -q --no-install-recommends "${PACKAGES[@]}" >"$APT_LOG" 2>&1; then
        apt-get update -q >>"$APT_LOG" 2>&1 \
            || cannot "apt-get update failed: $(tail -n 3 "$APT_LOG" | tr '\n' ' ')"
        apt-get install -y -q --no-install-recommends "${PACKAGES[@]}" >>"$APT_LOG" 2>&1 \
            || cannot "apt-get install ${PACKAGES[*]} failed: $(tail -n 3 "$APT_LOG" | tr '\n' ' ')"
    fi
    [ -z "$(missing_binaries)" ] || cannot "installed ${PACKAGES[*]} but still missing: $(missing_binaries)"
    echo "installed ${PACKAGES[*]}"
}

free_port() {
    "${PYTHON:-python3}" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

alive() { [ -n "${1:-}" ] && kill -0 "$1" 2>/dev/null; }

start_bg() {  # start_bg NAME CMD...: run CMD in the background, its PID into RUNDIR/NAME.pid
    local name=$1
    shift
    "$@" </dev/null >>"$RUN/log/$name.out" 2>&1 &
    echo $! >"$RUN/$name.pid"
}

wait_for() {  # wait_for SECONDS DESCRIPTION CMD...: run CMD every 0.5 s until it succeeds
    local seconds=$1 what=$2 i
    shift 2
    for ((i = 0; i < seconds * 2; i++)); do
        "$@" >/dev/null 2>&1 && return 0
        sleep 0.5
    done
    log "timed out after ${seconds}s waiting for $what"
    return 1
}

node_idle() { sinfo -h -N -o '%T' | grep -qx 'idle'; }

failed_up() {
    trap - ERR
    log "bring-up failed; last lines of the daemon logs:"
    tail -n 15 "$RUN"/log/*.log "$RUN"/log/*.out "$RUN/munge/munged.log" >&2 2>/dev/null || true
    sinfo -N -l >&2 2>/dev/null || true
    cmd_down "$RUN"
}

cmd_up() {
    local RUN
    RUN=$(realpath -m "$1")
    cmd_check >/dev/null
    [ -z "$(missing_binaries)" ] || cannot "SLURM is not installed (missing: $(missing_binaries)); run '$0 install'"
    # A cluster left behind by an interrupted run: stop the daemons it recorded, then start afresh.
    if is_ours "$CONF"; then
        local old
        old=$(run_dir_of "$CONF")
        log "stopping the cluster left in $old"
        cmd_down "$old"
    fi

    mkdir -p "$RUN"/{state,spool,log,munge}
    chmod 0755 "$RUN"
    trap 'failed_up' ERR
    local host cpus mem_mb gpus ctld_port slurmd_port gres_types="" node_gres=""
    host=$(hostname -s)
    cpus=$(env -u OMP_NUM_THREADS -u OMP_THREAD_LIMIT nproc)
    mem_mb=$(awk '/MemTotal/ {printf "%d", $2 / 1024 * 0.8}' /proc/meminfo)
    gpus=${LOCAL_CLUSTER_GPUS:-0}
    ctld_port=$(free_port)
    slurmd_port=$(free_port)
    while [ "$slurmd_port" = "$ctld_port" ]; do slurmd_port=$(free_port); done

    # MUNGE with its own key and socket: a system munged, if any, is neither used nor disturbed.
    chown munge:munge "$RUN/munge"
    chmod 0700 "$RUN/munge"
    dd if=/dev/urandom of="$RUN/munge/munge.key" bs=1024 count=1 status=none
    chown munge:munge "$RUN/munge/munge.key"
    chmod 0400 "$RUN/munge/munge.key"
    local socket="$RUN/munge/munge.socket"
    start_bg munged setpriv --reuid=munge --regid=munge --clear-groups \
        munged --force --foreground --socket="$socket" --key-file="$RUN/munge/munge.key" \
        --log-file="$RUN/munge/munged.log" --pid-file="$RUN/munge/munged.pidfile" \
        --seed-file="$RUN/munge/munged.seed"
    wait_for 15 "munged" test -S "$socket"

    mkdir -p "$CONF_DIR"
    if [ "$gpus" -gt 0 ]; then
        mkdir -p "$RUN/dev"
        for ((i = 0; i < gpus; i++)); do mknod -m 0666 "$RUN/dev/gpu$i" c 1 3; done  # like /dev/null
        gres_types="GresTypes=gpu"
        node_gres="Gres=gpu:$gpus"
        {
            echo "$MARKER $RUN"
            echo "# Written by tests/slurm/local_cluster.sh; removed by 'local_cluster.sh down'."
            echo "# No real GPU: null devices stand in so that --gpus requests are scheduled."
            for ((i = 0; i < gpus; i++)); do echo "Name=gpu File=$RUN/dev/gpu$i"; done
        } >"$GRES_CONF"
    fi
    cat >"$CONF" <<EOF
$MARKER $RUN
# Written by tests/slurm/local_cluster.sh; removed by 'local_cluster.sh down'.
ClusterName=lesionbench-test
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$ctld_port
SlurmdPort=$slurmd_port
SlurmUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$socket
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=1000
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
MinJobAge=1800
ReturnToService=2
StateSaveLocation=$RUN/state
SlurmdSpoolDir=$RUN/spool
SlurmctldPidFile=$RUN/slurmctld.pidfile
SlurmdPidFile=$RUN/slurmd.pidfile
SlurmctldLogFile=$RUN/log/slurmctld.log
SlurmdLogFile=$RUN/log/slurmd.log
$gres_types
NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem_mb $node_gres State=UNKNOWN
PartitionName=local Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF
    chmod 0644 "$CONF"

    start_bg slurmctld slurmctld -D -i -f "$CONF"
    wait_for 30 "slurmctld" scontrol ping
    start_bg slurmd slurmd -D -f "$CONF" -N "$host"
    wait_for 60 "node $host to become idle" node_idle
    trap - ERR
    log "node $host idle: $cpus CPUs, $mem_mb MB, $gpus GPU(s); slurmctld :$ctld_port, slurmd :$slurmd_port"
    echo "munged=$(cat "$RUN/munged.pid") slurmctld=$(cat "$RUN/slurmctld.pid") slurmd=$(cat "$RUN/slurmd.pid")"
}

stop_pid() {  # stop_pid NAME: SIGTERM the PID in RUNDIR/NAME.pid, wait up to 15 s, then SIGKILL
    local name=$1 pidfile="$RUN/$1.pid" pid i
    [ -f "$pidfile" ] || return 0
    pid=$(cat "$pidfile")
    if alive "$pid"; then
        kill -TERM "$pid" 2>/dev/null || true
        for ((i = 0; i < 30; i++)); do
            alive "$pid" || break
            sleep 0.5
        done
        if alive "$pid"; then
            log "$name ($pid) still running after SIGTERM; sending SIGKILL"
            kill -KILL "$pid" 2>/dev/null || true
        fi
        log "stopped $name ($pid)"
    fi
    rm -f "$pidfile"
}

no_active_jobs() { [ -z "$(squeue -h -t PENDING,RUNNING,COMPLETING,CONFIGURING -o %i)" ]; }

cmd_down() {
    local RUN
    RUN=$(realpath -m "$1")
    # Jobs first: a job's slurmstepd outlives slurmd, so let the jobs end before the daemons go.
    if [ -f "$RUN/slurmctld.pid" ] && alive "$(cat "$RUN/slurmctld.pid")" && is_ours "$CONF" \
        && [ "$(run_dir_of "$CONF")" = "$RUN" ] && ! no_active_jobs; then
        log "cancelling remaining jobs: $(squeue -h -o %i | tr '\n' ' ')"
        scancel --full "--user=$(id -un)" 2>/dev/null || true
        wait_for 20 "jobs to end" no_active_jobs || true
    fi
    stop_pid slurmd
    stop_pid slurmctld
    stop_pid munged
    local f
    for f in "$CONF" "$GRES_CONF"; do
        if is_ours "$f" && [ "$(run_dir_of "$f")" = "$RUN" ]; then rm -f "$f"; fi
    done
}

cmd_info() {
    sinfo -N -o '%N %T %c CPUs %m MB gres=%G'
    squeue -t all -o '%.6i %.10T %.4C %.8m %.14b %.40k'
}

case "${1:-}" in
    check) cmd_check ;;
    install) cmd_install ;;
    up | down)
        [ $# -eq 2 ] || { echo "usage: $0 $1 RUNDIR" >&2; exit 2; }
        "cmd_$1" "$2"
        ;;
    info) cmd_info ;;
    *)
        sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//' >&2
        exit 2
        ;;
esac
