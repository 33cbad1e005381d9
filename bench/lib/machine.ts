/**
 * What machine a number was measured on, and how busy it was: the CPU time of the whole machine (/proc/stat)
 * against the CPU time of the processes under test (/proc/<pid>/stat), so that load from anything else (such as a
 * training run sharing the two cores) shows up next to the numbers it distorts.
 */
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import os from 'node:os';

export interface MachineInfo {
  nproc: number;
  cpu_model: string;
  memory_gib: number;
  node: string;
  kernel: string;
  hostname: string;
}

export function machineInfo(): MachineInfo {
  const cpuinfo = readFileSync('/proc/cpuinfo', 'utf8');
  const model = /^model name\s*:\s*(.+)$/m.exec(cpuinfo)?.[1]?.trim() ?? os.cpus()[0]?.model ?? 'unknown';
  let nproc = os.availableParallelism();
  try {
    nproc = Number(execFileSync('nproc', { encoding: 'utf8' }).trim()) || nproc;
  } catch { /* os.availableParallelism() it is */ }
  return {
    nproc,
    cpu_model: model,
    memory_gib: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
    node: process.version,
    kernel: os.release(),
    hostname: os.hostname(),
  };
}

/**
 * Other processes that share the machine and distort measurements: training runs of this repository. One stopped
 * for the measurement (SIGSTOP, state T) takes no CPU: `paused` lists those.
 */
export function trainingProcesses(): { competing: string[]; paused: string[] } {
  const found = { competing: [] as string[], paused: [] as string[] };
  const own = ownProcesses();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || own.has(entry)) continue;
    try {
      const cmdline = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0').join(' ').trim();
      if (!/training\.llm2rec|training\/llm2rec/.test(cmdline)) continue;
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const state = stat.slice(stat.lastIndexOf(')') + 2).split(' ')[0];
      (state === 'T' ? found.paused : found.competing).push(`${entry}: ${cmdline.slice(0, 160)}`);
    } catch { /* gone */ }
  }
  return found;
}

/** This process and its ancestors (npm, sh, tsx): not competing, whatever their command lines say. */
function ownProcesses(): Set<string> {
  const pids = new Set<string>();
  for (let pid = String(process.pid); pid !== '0' && pid !== '' && !pids.has(pid);) {
    pids.add(pid);
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      pid = stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1];
    } catch {
      break;
    }
  }
  return pids;
}

/** The training runs that take CPU now (trainingProcesses().competing). */
export function competingProcesses(): string[] {
  return trainingProcesses().competing;
}

interface CpuSample {
  at: number;
  busy: number;
  total: number;
  own: number;
}

const TICKS_PER_SECOND = 100;

function machineTicks(): { busy: number; total: number } {
  const line = readFileSync('/proc/stat', 'utf8').split('\n')[0];
  const fields = line.trim().split(/\s+/).slice(1).map(Number);
  const [user, nice, system, idle, iowait, irq, softirq, steal] = fields;
  const busy = user + nice + system + irq + softirq + steal;
  return { busy, total: busy + idle + iowait };
}

function processTicks(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // utime and stime are fields 14 and 15 of the whole line, 12 and 13 after the command name.
    return Number(fields[11]) + Number(fields[12]);
  } catch {
    return 0;
  }
}

/** CPU time (user + system, all threads) a process has used so far, in milliseconds (10 ms resolution). */
export function processCpuMs(pid: number): number {
  return (processTicks(pid) * 1000) / TICKS_PER_SECOND;
}

/** CPU use over an interval, in cores: the whole machine, the processes measured, everything else. */
export interface CpuUse {
  machine_cores: number;
  measured_cores: number;
  other_cores: number;
  loadavg_1m: number;
}

export class CpuMeter {
  private start: CpuSample;

  constructor(private readonly pids: () => number[]) {
    this.start = this.sample();
  }

  private sample(): CpuSample {
    const { busy, total } = machineTicks();
    const own = [process.pid, ...this.pids()].reduce((sum, pid) => sum + processTicks(pid), 0);
    return { at: performance.now(), busy, total, own };
  }

  /** Use since the meter was made (or last reset). */
  read(): CpuUse {
    const end = this.sample();
    const seconds = (end.at - this.start.at) / 1000;
    const cores = (ticks: number) => Math.round((ticks / TICKS_PER_SECOND / Math.max(seconds, 1e-3)) * 100) / 100;
    const machine = cores(end.busy - this.start.busy);
    const measured = cores(end.own - this.start.own);
    return {
      machine_cores: machine,
      measured_cores: measured,
      other_cores: Math.max(0, Math.round((machine - measured) * 100) / 100),
      loadavg_1m: Math.round(os.loadavg()[0] * 100) / 100,
    };
  }

  reset(): void {
    this.start = this.sample();
  }
}

function allProcessTicks(): Map<number, number> {
  const ticks = new Map<number, number>();
  for (const entry of readdirSync('/proc')) {
    if (/^\d+$/.test(entry)) ticks.set(Number(entry), processTicks(Number(entry)));
  }
  return ticks;
}

function commandLine(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ').trim().slice(0, 140);
  } catch {
    return '?';
  }
}

/** Processes other than this one using at least a tenth of a core over `ms` milliseconds. */
export async function busyProcesses(ms = 1000): Promise<string[]> {
  const before = allProcessTicks();
  await new Promise((resolve) => setTimeout(resolve, ms));
  const after = allProcessTicks();
  const busy: { pid: number; cores: number }[] = [];
  for (const [pid, ticks] of after) {
    if (pid === process.pid) continue;
    const cores = (ticks - (before.get(pid) ?? ticks)) / TICKS_PER_SECOND / (ms / 1000);
    if (cores >= 0.1) busy.push({ pid, cores });
  }
  return busy.sort((a, b) => b.cores - a.cores).map(({ pid, cores }) => `${cores.toFixed(2)} cores: ${commandLine(pid)}`);
}

export interface LoadSnapshot {
  at: string;
  loadavg: number[];
  competing_processes: string[];
  /** Training runs stopped (SIGSTOP) while this was measured. */
  paused_processes: string[];
  busy_processes: string[];
}

/** A snapshot of the machine's load for reports. */
export async function loadSnapshot(): Promise<LoadSnapshot> {
  return {
    at: new Date().toISOString(),
    loadavg: os.loadavg().map((value) => Math.round(value * 100) / 100),
    ...(({ competing, paused }) => ({ competing_processes: competing, paused_processes: paused }))(trainingProcesses()),
    busy_processes: await busyProcesses(),
  };
}

/** Whether numbers measured between two snapshots are the machine's own, in one sentence. */
export function loadNote(start: LoadSnapshot, end: LoadSnapshot, otherCoresMean?: number): string {
  const training = start.competing_processes.length > 0 || end.competing_processes.length > 0;
  const busy = start.busy_processes.length > 0 || end.busy_processes.length > 0 || (otherCoresMean ?? 0) >= 0.2;
  const stopped = pausedThroughout(start, end);
  const paused = stopped.length > 0 ? `; ${stopped.length === 1 ? 'a training process was' : 'training processes were'} stopped (SIGSTOP) throughout: ${stopped.map((line) => line.split(':')[0]).join(', ')}` : '';
  if (training) return 'measured while a training run shared the machine: these are not the machine\'s numbers';
  if (busy) return `measured while other processes used part of the CPU (see busy_processes and other_cores): numbers are lower than on a quiet machine${paused}`;
  return `quiet machine: no other process used a tenth of a core at the start or the end${paused}`;
}

/** The training runs stopped at the start or the end of a measurement (and not running at either). */
export function pausedThroughout(start: LoadSnapshot, end: LoadSnapshot): string[] {
  return [...new Set([...(start.paused_processes ?? []), ...(end.paused_processes ?? [])])];
}

/** The commit measured, and the files of src/ that differ from it (others may be editing while a benchmark runs). */
export function gitState(cwd: string): { commit: string; src_changes: string[] } {
  try {
    const commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd, encoding: 'utf8' }).trim();
    const status = execFileSync('git', ['status', '--porcelain', '--', 'src', 'prisma'], { cwd, encoding: 'utf8' });
    return { commit, src_changes: status.split('\n').filter((line) => line.trim() !== '').map((line) => line.trim()) };
  } catch {
    return { commit: 'unknown', src_changes: [] };
  }
}
