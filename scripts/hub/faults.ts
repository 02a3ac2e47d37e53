/**
 * Fault injection for tests of downloads: cut the connection after N body bytes, answer an error
 * status a few times, or pause the body. Each rule fires `times` times (default 1), then the hub
 * behaves normally. Paths are matched on the decoded request path, prefix included
 * (`/hub/test-org/stories260K/resolve/main/model.safetensors`): a string matches a path ending
 * with it, a RegExp is tested against it.
 */

export type PathPattern = RegExp | string;

export interface DropFault {
  path: PathPattern;
  /** Body bytes sent before the TCP connection is destroyed. */
  bytes: number;
  times?: number;
}

export interface StatusFault {
  path: PathPattern;
  /** e.g. 503; answered instead of the real reply (GET and HEAD). */
  status: number;
  times?: number;
}

export interface StallFault {
  path: PathPattern;
  /** Pause length. */
  ms: number;
  /** Body bytes sent before the pause (default 0: headers, then nothing for `ms`). */
  afterBytes?: number;
  times?: number;
}

export interface HubFaults {
  dropAfterBytes?: DropFault | DropFault[];
  status?: StatusFault | StatusFault[];
  stall?: StallFault | StallFault[];
}

/** What to do to one file body. */
export interface BodyFault {
  dropAfter?: number;
  stallAfter?: number;
  stallMs?: number;
}

interface Rule<T> {
  rule: T;
  left: number;
}

const list = <T>(v: T | T[] | undefined): T[] => (v === undefined ? [] : Array.isArray(v) ? v : [v]);
const rules = <T extends { times?: number }>(v: T | T[] | undefined): Rule<T>[] => list(v).map((rule) => ({ rule, left: rule.times ?? 1 }));

function matches(p: PathPattern, path: string): boolean {
  if (typeof p === 'string') return path.endsWith(p);
  p.lastIndex = 0;
  return p.test(path);
}

/**
 * The live fault rules of one hub; `set` replaces them (and their counts).
 * @example const plan = new FaultPlan({ status: { path: 'config.json', status: 503, times: 2 } });
 */
export class FaultPlan {
  private drops: Rule<DropFault>[] = [];
  private statuses: Rule<StatusFault>[] = [];
  private stalls: Rule<StallFault>[] = [];

  constructor(faults: HubFaults = {}) {
    this.set(faults);
  }

  set(faults: HubFaults): void {
    this.drops = rules(faults.dropAfterBytes);
    this.statuses = rules(faults.status);
    this.stalls = rules(faults.stall);
  }

  /** Uses left over all rules (0 once every fault has fired its `times`). */
  get pending(): number {
    return [...this.drops, ...this.statuses, ...this.stalls].reduce((n, r) => n + (Number.isFinite(r.left) ? r.left : 1), 0);
  }

  /** The status to answer instead of the real reply, consuming one use; null for none. */
  takeStatus(path: string): number | null {
    const r = this.statuses.find((s) => s.left > 0 && matches(s.rule.path, path));
    if (!r) return null;
    r.left--;
    return r.rule.status;
  }

  /** Faults for a body of `length` bytes; a rule is used up only when it will fire within the body. */
  takeBody(path: string, length: number): BodyFault {
    const out: BodyFault = {};
    const drop = this.drops.find((d) => d.left > 0 && d.rule.bytes < length && matches(d.rule.path, path));
    if (drop) {
      drop.left--;
      out.dropAfter = drop.rule.bytes;
    }
    const stall = this.stalls.find((s) => s.left > 0 && (s.rule.afterBytes ?? 0) < length && matches(s.rule.path, path));
    if (stall) {
      stall.left--;
      out.stallAfter = stall.rule.afterBytes ?? 0;
      out.stallMs = stall.rule.ms;
    }
    return out;
  }
}
