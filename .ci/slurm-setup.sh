#!/usr/bin/env bash
# A one-node Slurm cluster with accounting, for the executor tests (and for trying
# `grader run --executor slurm` on a laptop).
#
#   bash .ci/slurm-setup.sh [DIR]        start (idempotent); last stdout line: SLURM_CONF=DIR/slurm.conf
#   bash .ci/slurm-setup.sh stop [DIR]   stop the daemons this script started (by their recorded pids)
#
# DIR defaults to $GRADER_SLURM_DIR, else /tmp/grader-slurm. Config, state, logs and pid files
# all live there; nothing under /etc is changed. Needs root and Debian's slurmctld, slurmd,
# slurmdbd, slurm-client, munge and mariadb-server. Accounting (slurmdbd + MariaDB) is not
# optional: job states come from sacct, and without it a cancelled job never reads as finished.
# $GRADER_SLURM_GPUS (default 2) fake GPUs are declared as gres, for tests of GPU placement.
set -euo pipefail

cmd=start
if [[ "${1:-}" == "stop" || "${1:-}" == "start" ]]; then cmd=$1; shift; fi
DIR=$(realpath -m "${1:-${GRADER_SLURM_DIR:-/tmp/grader-slurm}}")
export SLURM_CONF="$DIR/slurm.conf"

log() { echo "slurm-setup: $*" >&2; }
alive() { [[ -f "$DIR/pids/$1" ]] && kill -0 "$(cat "$DIR/pids/$1")" 2>/dev/null; }

stop() {
    # Reverse start order; only what this script started (pid files), never by name.
    for name in slurmd slurmctld slurmdbd mariadbd munged; do
        if alive "$name"; then
            pid=$(cat "$DIR/pids/$name")
            kill "$pid" 2>/dev/null || true
            for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
            kill -9 "$pid" 2>/dev/null || true
            log "stopped $name ($pid)"
        fi
        rm -f "$DIR/pids/$name"
    done
}

if [[ "$cmd" == stop ]]; then stop; exit 0; fi

[[ $(id -u) == 0 ]] || { log "needs root (daemons run as root/munge/mysql)"; exit 1; }
for bin in munged mariadbd slurmdbd slurmctld slurmd sbatch sacct sacctmgr; do
    command -v "$bin" >/dev/null || [[ -x "/usr/sbin/$bin" ]] || { log "$bin not installed"; exit 1; }
done
export PATH="$PATH:/usr/sbin"
mkdir -p "$DIR"/{pids,log,state,spool}

# Detach a long-running foreground daemon and record its pid.
spawn() {
    local name=$1; shift
    setsid "$@" </dev/null >>"$DIR/log/$name.out" 2>&1 &
    echo $! >"$DIR/pids/$name"
}

wait_for() {  # wait_for SECONDS WHAT COMMAND...
    local secs=$1 what=$2; shift 2
    for _ in $(seq $((secs * 10))); do "$@" >/dev/null 2>&1 && return 0; sleep 0.1; done
    log "$what did not come up within ${secs}s; logs in $DIR/log"; tail -n 20 "$DIR"/log/* >&2 || true
    exit 1
}

# ---------------------------------------------------------------- config
cpus=$(nproc)
mem_mb=$(( $(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 * 8 / 10 ))
gpus=${GRADER_SLURM_GPUS:-2}
node_gres=""
if (( gpus > 0 )); then
    # Slurm accepts only character devices as GPU files; these are /dev/null's numbers.
    for i in $(seq 0 $((gpus - 1))); do
        [[ -c "$DIR/gpu$i" ]] || mknod "$DIR/gpu$i" c 1 3 2>/dev/null || { gpus=0; break; }
    done
fi
if (( gpus > 0 )); then
    node_gres="Gres=gpu:$gpus"
    printf 'AutoDetect=off\nName=gpu File=%s/gpu[0-%d]\n' "$DIR" $((gpus - 1)) >"$DIR/gres.conf"
else
    : >"$DIR/gres.conf"
fi

cat >"$DIR/slurm.conf" <<EOF
ClusterName=grader
SlurmctldHost=localhost
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
MpiDefault=none
ReturnToService=2
KillWait=5
MinJobAge=300
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=$DIR/slurmctld.pid
SlurmdPidFile=$DIR/slurmd.pid
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd.log
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
AccountingStorageTRES=gres/gpu
JobAcctGatherType=jobacct_gather/none
GresTypes=gpu
NodeName=localhost CPUs=$cpus RealMemory=$mem_mb $node_gres State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP
EOF

cat >"$DIR/slurmdbd.conf" <<EOF
AuthType=auth/munge
DbdHost=localhost
SlurmUser=root
PidFile=$DIR/slurmdbd.pid
LogFile=$DIR/log/slurmdbd.log
StorageType=accounting_storage/mysql
StorageHost=localhost
StorageUser=slurm
StoragePass=slurm
StorageLoc=grader_slurm_acct
EOF
chmod 600 "$DIR/slurmdbd.conf"

# ---------------------------------------------------------------- daemons
if ! { munge -n | unmunge; } >/dev/null 2>&1; then
    mkdir -p /run/munge /var/log/munge /var/lib/munge
    chown munge:munge /run/munge /var/log/munge /var/lib/munge
    [[ -f /etc/munge/munge.key ]] || mungekey --create >/dev/null
    chown munge:munge /etc/munge/munge.key && chmod 400 /etc/munge/munge.key
    runuser -u munge -- /usr/sbin/munged --foreground </dev/null >>"$DIR/log/munged.out" 2>&1 &
    echo $! >"$DIR/pids/munged"
    wait_for 10 munged bash -c 'munge -n | unmunge'
fi

if ! mariadb-admin ping >/dev/null 2>&1; then
    mkdir -p /run/mysqld && chown mysql:mysql /run/mysqld
    [[ -d /var/lib/mysql/mysql ]] || mariadb-install-db --user=mysql >/dev/null
    spawn mariadbd mariadbd --user=mysql --bind-address=127.0.0.1
    wait_for 30 mariadb mariadb-admin ping
fi
mariadb -e "CREATE DATABASE IF NOT EXISTS grader_slurm_acct;
  CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY 'slurm';
  GRANT ALL ON grader_slurm_acct.* TO 'slurm'@'localhost';"

if ! alive slurmdbd; then
    spawn slurmdbd slurmdbd -D  # reads slurmdbd.conf beside $SLURM_CONF
    wait_for 30 slurmdbd sacctmgr -n list cluster
fi
sacctmgr -i add cluster grader >/dev/null 2>&1 || true

if ! alive slurmctld; then
    spawn slurmctld slurmctld -D -i -f "$SLURM_CONF"
    wait_for 30 slurmctld scontrol ping
fi
if ! alive slurmd; then
    spawn slurmd slurmd -D -N localhost -f "$SLURM_CONF"
fi
wait_for 30 "node localhost" bash -c '[[ $(sinfo -h -n localhost -o %t) =~ ^(idle|mix|alloc) ]]'
wait_for 30 sacct sacct -n -X -S now-1minutes
log "one-node cluster up: $cpus CPUs, ${mem_mb} MB, $gpus fake GPUs; logs in $DIR/log"
echo "SLURM_CONF=$SLURM_CONF"
