#!/usr/bin/env bash
# A single-node SLURM cluster on this machine, for testing the slurm profile end to end.
#
#   local_cluster.sh check            can a cluster be brought up here? (exit 3 + reason if not)
#   local_cluster.sh install          apt-get install the SLURM and MUNGE packages if missing
#   local_cluster.sh up   RUNDIR      start munged, slurmctld and slurmd; wait until the node is idle
#   local_cluster.sh down RUNDIR      cancel remaining jobs, stop the three daemons by their PIDs
#   local_cluster.sh info RUNDIR      sinfo / squeue of the running cluster
#
# Everything the cluster writes lives in RUNDIR (state, spool, logs, its own MUNGE key and socket,
# free TCP ports chosen at start), except the one file that cannot move: /etc/slurm/slurm.conf.
# Inside a job the slurm executor runs `srun` with every SLURM_* variable removed (SLURM_CONF too),
# so srun only finds the default config path. That file is written with a marker line naming
# RUNDIR and removed again by `down`; a slurm.conf without that marker is never touched (`check`
# reports it and the test is skipped).
#
# Needs root (the daemons run as root, munged as user munge) and Debian's packages
# slurmctld slurmd slurm-client munge. Exit status 3 means "cannot run here", with the reason on
# stdout; any other non-zero status is an error.
set -euo pipefail

CONF=/etc/slurm/slurm.conf
MARKER="# lesionbench local test cluster, run dir:"
PACKAGES=(slurmctld slurmd slurm-client munge)
BINARIES=(munged slurmctld slurmd sbatch squeue sinfo scontrol scancel srun)

cannot() { echo "$*"; exit 3; }
log() { echo "local_cluster: $*" >&2; }

missing_binaries() {
    local b missing=()
    for b in "${BINARIES[@]}"; do
        command -v "$b" >/dev/null 2>&1 || [ -x "/usr/sbin/$b" ] || missing+=("$b")
    done
    echo "${missing[*]:-}"
}

conf_is_ours() { [ -f "$CONF" ] && head -n 1 "$CONF" | grep -qF "$MARKER"; }

cmd_check() {
    [ "$(id -u)" -eq 0 ] || cannot "not root: a local SLURM cluster needs root to start slurmd/slurmctld and munged"
    if [ -n "$(missing_binaries)" ]; then
        command -v apt-get >/dev/null 2>&1 \
            || cannot "SLURM is not installed (missing: $(missing_binaries)) and apt-get is not available"
    fi
    if [ -f "$CONF" ] && ! conf_is_ours; then
        cannot "$CONF exists and was not written by this test; not overwriting a real SLURM configuration"
    fi
    echo "ok"
}

cmd_install() {
    cmd_check >/dev/null
    [ -z "$(missing_binaries)" ] && { echo "already installed"; return 0; }
    export DEBIAN_FRONTEND=noninteractive
    # A stale package list makes the install fail with 404s; refresh once and retry.
    if ! apt-get install -y -q --no-install-recommends "${PACKAGES[@]}" >/tmp/lesionbench-slurm-apt.log 2>&1; then
        apt-get update -q >>/tmp/lesionbench-slurm-apt.log 2>&1 \
            || cannot "apt-get update failed (no package registry?): $(tail -n 3 /tmp/lesionbench-slurm-apt.log | tr '\n' ' ')"
        apt-get install -y -q --no-install-recommends "${PACKAGES[@]}" >>/tmp/lesionbench-slurm-apt.log 2>&1 \
            || cannot "apt-get install ${PACKAGES[*]} failed: $(tail -n 3 /tmp/lesionbench-slurm-apt.log | tr '\n' ' ')"
    fi
    [ -z "$(missing_binaries)" ] || cannot "installed ${PACKAGES[*]} but still missing: $(missing_binaries)"
    echo "installed ${PACKAGES[*]}"
}

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

alive() { [ -n "${1:-}" ] && kill -0 "$1" 2>/dev/null; }

start_bg() {  # start_bg NAME PIDFILE CMD...: run CMD in the background, its PID into PIDFILE
    local name=$1 pidfile=$2
    shift 2
    "$@" </dev/null >>"$RUN/log/$name.out" 2>&1 &
    echo $! >"$pidfile"
}

wait_for() {  # wait_for SECONDS DESCRIPTION CMD...: poll CMD every 0.5 s until it succeeds
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

cmd_up() {
    RUN=$(realpath -m "$1")
    cmd_check >/dev/null
    [ -z "$(missing_binaries)" ] || cannot "SLURM is not installed (missing: $(missing_binaries)); run '$0 install'"
    # A cluster left by an interrupted run: stop the daemons it recorded, then start afresh.
    if conf_is_ours; then
        local old
        old=$(head -n 1 "$CONF" | sed "s|^$MARKER ||")
        [ -d "$old" ] && cmd_down "$old" || true
    fi

    mkdir -p "$RUN"/{state,spool,log,munge}
    chmod 0755 "$RUN"
    local host cpus mem_mb ctld_port slurmd_port
    host=$(hostname -s)
    cpus=$(nproc)
    mem_mb=$(awk '/MemTotal/ {printf "%d", $2 / 1024 * 0.8}' /proc/meminfo)
    ctld_port=$(free_port)
    slurmd_port=$(free_port)
    while [ "$slurmd_port" = "$ctld_port" ]; do slurmd_port=$(free_port); done
    # LOCAL_CLUSTER_GPUS=N declares N GPUs on the node as a count-only GRES (no device files), so that
    # jobs submitted with --gpus are scheduled; they run on the CPU.
    local gres_types="" node_gres=""
    if [ "${LOCAL_CLUSTER_GPUS:-0}" -gt 0 ]; then
        gres_types="GresTypes=gpu"
        node_gres="Gres=gpu:${LOCAL_CLUSTER_GPUS}"
    fi

    # MUNGE with its own key and socket, so a system munged (if any) is neither used nor disturbed.
    chown munge:munge "$RUN/munge"
    chmod 0700 "$RUN/munge"
    dd if=/dev/urandom of="$RUN/munge/munge.key" bs=1024 count=1 status=none
    chown munge:munge "$RUN/munge/munge.key"
    chmod 0400 "$RUN/munge/munge.key"
    local socket="$RUN/munge/munge.socket"
    start_bg munged "$RUN/munged.pid" \
        setpriv --reuid=munge --regid=munge --clear-groups \
        munged --force --foreground --socket="$socket" --key-file="$RUN/munge/munge.key" \
        --log-file="$RUN/munge/munged.log" --pid-file="$RUN/munge/munged.pidfile" \
        --seed-file="$RUN/munge/munged.seed"
    wait_for 15 "munged socket" test -S "$socket" || { cat "$RUN/munge/munged.log" >&2 || true; exit 1; }

    mkdir -p "$(dirname "$CONF")"
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
$gres_types
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=1000
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
MinJobAge=300
ReturnToService=2
StateSaveLocation=$RUN/state
SlurmdSpoolDir=$RUN/spool
SlurmctldPidFile=$RUN/slurmctld.pidfile
SlurmdPidFile=$RUN/slurmd.pidfile
SlurmctldLogFile=$RUN/log/slurmctld.log
SlurmdLogFile=$RUN/log/slurmd.log
NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem_mb $node_gres State=UNKNOWN
PartitionName=local Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF
    chmod 0644 "$CONF"

    start_bg slurmctld "$RUN/slurmctld.pid" slurmctld -D -i -f "$CONF"
    wait_for 30 "slurmctld" scontrol ping || { tail -n 20 "$RUN/log/slurmctld.log" >&2 || true; exit 1; }
    start_bg slurmd "$RUN/slurmd.pid" slurmd -D -f "$CONF" -N "$host"
    wait_for 60 "node $host to become idle" node_idle || {
        sinfo -N -l >&2 || true
        tail -n 20 "$RUN/log/slurmd.log" >&2 || true
        exit 1
    }
    log "node $host idle: $cpus CPUs, ${mem_mb} MB, slurmctld :$ctld_port, slurmd :$slurmd_port"
    echo "munged=$(cat "$RUN/munged.pid") slurmctld=$(cat "$RUN/slurmctld.pid") slurmd=$(cat "$RUN/slurmd.pid")"
}

stop_pid() {  # stop_pid NAME PIDFILE: SIGTERM, wait up to 15 s, then SIGKILL
    local name=$1 pidfile=$2 pid i
    [ -f "$pidfile" ] || return 0
    pid=$(cat "$pidfile")
    if alive "$pid"; then
        kill -TERM "$pid" 2>/dev/null || true
        for ((i = 0; i < 30; i++)); do alive "$pid" || break; sleep 0.5; done
        if alive "$pid"; then
            log "$name ($pid) ignored SIGTERM; killing"
            kill -KILL "$pid" 2>/dev/null || true
        fi
    fi
    rm -f "$pidfile"
    log "stopped $name ($pid)"
}

cmd_down() {
    RUN=$(realpath -m "$1")
    # Jobs first: their slurmstepd processes outlive slurmd, so let them end before the daemons go.
    if [ -f "$RUN/slurmctld.pid" ] && alive "$(cat "$RUN/slurmctld.pid")" && conf_is_ours; then
        scancel --full --signal=KILL --state=RUNNING "--user=$(id -un)" 2>/dev/null || true
        scancel "--user=$(id -un)" 2>/dev/null || true
        wait_for 20 "jobs to end" sh -c '[ -z "$(squeue -h -t PENDING,RUNNING,COMPLETING -o %i)" ]' || true
    fi
    stop_pid slurmd "$RUN/slurmd.pid"
    stop_pid slurmctld "$RUN/slurmctld.pid"
    stop_pid munged "$RUN/munged.pid"
    if conf_is_ours && [ "$(head -n 1 "$CONF" | sed "s|^$MARKER ||")" = "$RUN" ]; then
        rm -f "$CONF"
    fi
}

cmd_info() {
    sinfo -N -l
    squeue -t all -o '%.8i %.20j %.10T %.6C %.8m %.12b %R'
}

case "${1:-}" in
    check) cmd_check ;;
    install) cmd_install ;;
    up) [ $# -eq 2 ] || { echo "usage: $0 up RUNDIR" >&2; exit 2; }; cmd_up "$2" ;;
    down) [ $# -eq 2 ] || { echo "usage: $0 down RUNDIR" >&2; exit 2; }; cmd_down "$2" ;;
    info) cmd_info ;;
    *) sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
esac
