"""A real single-node SLURM cluster for tests, from Debian's packages (see .ci/run).

munged, slurmctld and slurmd run as root (as CI does; SlurmUser=root) with every piece of state
under one directory: munge key and socket, slurm.conf, state and spool directories, logs and
pid files. Nothing in /etc or /run is used or changed. No accounting database: `sacct` and
`sacctmgr` do not work, finished jobs stay visible to `squeue --states=all` and
`scontrol show job` for MinJobAge (one hour).

    cluster = SlurmCluster(tmp_path / "slurm")
    cluster.start()
    subprocess.run(["snakemake", "--profile", ...], env=cluster.env)
    cluster.stop()

The client commands are reached through wrappers in `cluster.bin` that set SLURM_CONF:
the SLURM executor plugin strips every SLURM_* variable (SLURM_CONF included) before the
job's inner `srun`, so the configuration has to come from PATH, which jobs inherit
(they are submitted with --export=ALL).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

DAEMONS = {
    "munged": "/usr/sbin/munged",
    "mungekey": "/usr/sbin/mungekey",
    "slurmctld": "/usr/sbin/slurmctld",
    "slurmd": "/usr/sbin/slurmd",
}
CLIENTS = (
    "srun",
    "sbatch",
    "squeue",
    "sacct",
    "sacctmgr",
    "scontrol",
    "sinfo",
    "scancel",
    "sshare",
    "sstat",
)
REQUIRED_CLIENTS = ("srun", "sbatch", "squeue", "scontrol", "sinfo", "scancel")
PACKAGES = "slurmctld slurmd slurm-client munge"
NODE = "localhost"
PARTITION = "debug"


def missing_binaries() -> list[str]:
    """Names of the SLURM/munge programs this machine lacks (empty when all are there)."""
    missing = [name for name, path in DAEMONS.items() if not os.access(path, os.X_OK)]
    return missing + [name for name in REQUIRED_CLIENTS if shutil.which(name) is None]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _memory_mb() -> int:
    with open("/proc/meminfo") as handle:
        total_kb = next(int(line.split()[1]) for line in handle if line.startswith("MemTotal:"))
    return max(1024, total_kb // 1024 // 2)  # half the machine: jobs here are small


@dataclass
class Job:
    """One line of `scontrol show job -o`, reduced to what tests look at."""

    job_id: str
    name: str
    state: str
    exit_code: str
    comment: str
    std_out: str
    run_time: str
    time_limit: str
    cpus: str
    memory: str


class SlurmCluster:
    def __init__(self, root: Path, cpus: int | None = None):
        self.root = Path(root)
        if len(str(self.root / "munge" / "munge.sock")) > 100:  # sun_path holds 108 bytes
            raise ValueError(f"path too long for a unix socket under {self.root}")
        self.bin = self.root / "bin"
        self.conf = self.root / "etc" / "slurm.conf"
        # at least 2: the test profile asks for up to 2 CPUs per job (slurmd is told to believe
        # the node line, SlurmdParameters=config_overrides, rather than the detected hardware)
        self.cpus = cpus or max(2, os.cpu_count() or 1)
        self.memory_mb = _memory_mb()
        self.cluster_name = "sivitest"
        self.procs: dict[str, subprocess.Popen] = {}
        self.startup_seconds: float | None = None

    # -- environment -------------------------------------------------------------------------

    @property
    def env(self) -> dict[str, str]:
        """os.environ with the wrappers first on PATH, SLURM_CONF set, no stray SLURM_* vars."""
        env = {
            k: v for k, v in os.environ.items() if not k.startswith(("SLURM_", "SBATCH_", "SRUN_"))
        }
        env["PATH"] = f"{self.bin}{os.pathsep}{env.get('PATH', '')}"
        env["SLURM_CONF"] = str(self.conf)
        return env

    def command(self, *args: str, timeout: float = 30, check: bool = True) -> str:
        """Run a SLURM client command against this cluster and return its stdout."""
        proc = subprocess.run(
            [str(self.bin / args[0]), *args[1:]],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if check and proc.returncode != 0:
            raise RuntimeError(f"{' '.join(args)} failed ({proc.returncode}): {proc.stderr}")
        return proc.stdout

    def jobs(self) -> list[Job]:
        """Every job slurmctld still knows (running or finished within MinJobAge)."""
        jobs = []
        for line in self.command("scontrol", "show", "job", "-o").splitlines():
            if not line.startswith("JobId="):
                continue  # "No jobs in the system"
            fields = dict(item.split("=", 1) for item in line.split() if "=" in item)
            jobs.append(
                Job(
                    fields["JobId"],
                    fields.get("JobName", ""),
                    fields.get("JobState", ""),
                    fields.get("ExitCode", ""),
                    fields.get("Comment", ""),
                    fields.get("StdOut", ""),
                    fields.get("RunTime", ""),
                    fields.get("TimeLimit", ""),
                    fields.get("NumCPUs", ""),
                    fields.get("MinMemoryNode", ""),
                )
            )
        return jobs

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self, timeout: float = 60) -> None:
        start = time.monotonic()
        for sub in ("bin", "etc", "munge", "state", "spool", "log", "run", "tmp"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        self.root.chmod(0o700)
        (self.root / "munge").chmod(0o700)
        self._write_wrappers()
        self._start_munge()
        self._write_conf()
        # Own process sessions: a Ctrl-C to pytest does not reach them; stop() ends them by PID.
        self._spawn("slurmctld", [DAEMONS["slurmctld"], "-D", "-f", str(self.conf)])
        self._spawn("slurmd", [DAEMONS["slurmd"], "-D", "-N", NODE, "-f", str(self.conf)])
        deadline = time.monotonic() + timeout
        state = ""
        while time.monotonic() < deadline:
            for name, proc in self.procs.items():
                if proc.poll() is not None:
                    raise RuntimeError(
                        f"{name} exited with {proc.returncode} during start-up\n"
                        + self.diagnostics()
                    )
            proc = subprocess.run(
                [str(self.bin / "sinfo"), "-h", "-n", NODE, "-o", "%t"],
                env=self.env,
                capture_output=True,
                text=True,
                timeout=10,
            )
            state = proc.stdout.strip()
            if state == "idle":
                self.startup_seconds = time.monotonic() - start
                return
            time.sleep(0.2)
        raise RuntimeError(
            f"node not idle after {timeout} s (state {state!r})\n" + self.diagnostics()
        )

    def stop(self, grace: float = 5) -> None:
        """Cancel every job, then TERM (KILL after `grace` s) the daemons, in reverse order."""
        if self.procs.get("slurmctld") and self.procs["slurmctld"].poll() is None:
            self.cancel_all(wait=grace)
        for name in reversed(list(self.procs)):
            proc = self.procs.pop(name)
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(grace)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(grace)

    def active_jobs(self) -> list[str]:
        """IDs of jobs pending or running (squeue's default states)."""
        proc = subprocess.run(
            [str(self.bin / "squeue"), "-h", "-o", "%i"],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=10,
        )
        return proc.stdout.split()

    def cancel_all(self, wait: float = 5) -> None:
        """scancel every job of the current user, and wait up to `wait` s for them to end."""
        subprocess.run(
            [str(self.bin / "scancel"), "--full", "--user", str(os.getuid())],
            env=self.env,
            capture_output=True,
            timeout=10,
        )
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline and self.active_jobs():
            time.sleep(0.2)

    def diagnostics(self) -> str:
        """Tails of the daemon logs, for error messages."""
        parts = []
        for log in sorted((self.root / "log").iterdir()):
            lines = log.read_text(errors="replace").splitlines()[-25:]
            parts.append(f"--- {log.name}\n" + "\n".join(lines))
        return "\n".join(parts)

    # -- pieces ------------------------------------------------------------------------------

    def _spawn(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> None:
        log = open(self.root / "log" / f"{name}.out", "w")
        self.procs[name] = subprocess.Popen(
            argv,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env or self.env,
            cwd=self.root,
            start_new_session=True,
        )
        log.close()

    def _write_wrappers(self) -> None:
        for name in CLIENTS:
            real = shutil.which(name)
            if real is None:
                continue
            wrapper = self.bin / name
            wrapper.write_text(f'#!/bin/sh\nSLURM_CONF="{self.conf}" exec "{real}" "$@"\n')
            wrapper.chmod(0o755)

    def _start_munge(self, timeout: float = 10) -> None:
        munge = self.root / "munge"
        key = munge / "munge.key"
        subprocess.run(
            [DAEMONS["mungekey"], "--create", f"--keyfile={key}", "--force"],
            check=True,
            capture_output=True,
            timeout=30,
        )
        key.chmod(0o600)
        self.munge_socket = munge / "munge.sock"
        self._spawn(
            "munged",
            [
                DAEMONS["munged"],
                "--foreground",
                "--force",
                f"--socket={self.munge_socket}",
                f"--key-file={key}",
                f"--pid-file={munge / 'munged.pid'}",
                f"--log-file={self.root / 'log' / 'munged.log'}",
                f"--seed-file={munge / 'munged.seed'}",
            ],
        )
        deadline = time.monotonic() + timeout
        while not self.munge_socket.exists():
            if self.procs["munged"].poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("munged did not start\n" + self.diagnostics())
            time.sleep(0.05)

    def _write_conf(self) -> None:
        r = self.root
        lines = [
            f"ClusterName={self.cluster_name}",
            f"SlurmctldHost={NODE}(127.0.0.1)",
            f"SlurmctldPort={_free_port()}",
            f"SlurmdPort={_free_port()}",
            "SlurmUser=root",  # tests/test_slurm.py requires root, as in CI
            "SlurmdUser=root",
            "AuthType=auth/munge",
            "CredType=cred/munge",
            f"AuthInfo=socket={self.munge_socket}",
            f"StateSaveLocation={r / 'state'}",
            f"SlurmdSpoolDir={r / 'spool'}",
            f"SlurmctldPidFile={r / 'run' / 'slurmctld.pid'}",
            f"SlurmdPidFile={r / 'run' / 'slurmd.pid'}",
            f"SlurmctldLogFile={r / 'log' / 'slurmctld.log'}",
            f"SlurmdLogFile={r / 'log' / 'slurmd.log'}",
            f"TmpFS={r / 'tmp'}",
            "SlurmctldDebug=info",
            "SlurmdDebug=info",
            # no cgroups in a container sandbox
            "ProctrackType=proctrack/linuxproc",
            "TaskPlugin=task/none",
            "JobAcctGatherType=jobacct_gather/none",
            "AccountingStorageType=accounting_storage/none",
            "JobCompType=jobcomp/none",
            "MpiDefault=none",
            "SwitchType=switch/none",
            "SelectType=select/cons_tres",
            "SelectTypeParameters=CR_Core_Memory",
            "SchedulerType=sched/backfill",
            "SchedulerParameters=batch_sched_delay=0,sched_min_interval=0",
            # finished jobs stay visible to squeue (the executor's status command here) for 1 h
            "MinJobAge=3600",
            "KillWait=2",
            "ReturnToService=2",
            # trust the node line below instead of comparing it with the detected hardware
            "SlurmdParameters=config_overrides",
            f"NodeName={NODE} NodeAddr=127.0.0.1 CPUs={self.cpus} Sockets=1 "
            f"CoresPerSocket={self.cpus} ThreadsPerCore=1 RealMemory={self.memory_mb} "
            "State=UNKNOWN",
            f"PartitionName={PARTITION} Nodes={NODE} Default=YES MaxTime=INFINITE State=UP",
        ]
        self.conf.write_text("\n".join(lines) + "\n")
