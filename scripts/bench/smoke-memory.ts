/**
 * The smoke run's memory check: the memory plan's bytes per category against what the model's
 * GpuAllocator accounts, at one point of the run (after the load, after attaching the adapter).
 */
import type { MemoryCategory } from '../../models/gpu/allocator.ts';
import type { GpuAllocator } from '../../models/gpu/allocator.ts';
import type { MemoryPlan } from '../../models/memory-plan.ts';

export const MEMORY_CATEGORIES: MemoryCategory[] = ['weights', 'kvCache', 'activations', 'lora', 'optimizer', 'staging'];

export interface CategoryCheck {
  planned: number;
  accounted: number;
  /** accounted - planned */
  diff: number;
}

export interface MemoryCheck {
  byCategory: Record<MemoryCategory, CategoryCheck>;
  total: CategoryCheck;
  /** The allocator's high-water mark against the plan's peak (the load's staging included). */
  peak: CategoryCheck;
  /** Every category and the total equal (the plan says exactly what is allocated). */
  equal: boolean;
}

const check = (planned: number, accounted: number): CategoryCheck => ({ planned, accounted, diff: accounted - planned });

/**
 * Compares a plan with an allocator's live bytes, per category.
 * @example memoryCheck(planMemory(config, opts), (model.engine as GpuLlama).alloc).equal; // true
 */
export function memoryCheck(plan: MemoryPlan, alloc: Pick<GpuAllocator, 'byCategory' | 'total' | 'peak'>): MemoryCheck {
  const live = alloc.byCategory();
  const byCategory = Object.fromEntries(MEMORY_CATEGORIES.map((c) => [c, check(plan.byCategory[c], live[c])])) as Record<MemoryCategory, CategoryCheck>;
  const total = check(plan.total, alloc.total);
  return { byCategory, total, peak: check(plan.peak, alloc.peak), equal: total.diff === 0 && MEMORY_CATEGORIES.every((c) => byCategory[c].diff === 0) };
}

const MB = (b: number) => (b / 1e6).toFixed(1);

/** Plain-text rows: category, planned MB, accounted MB, difference in bytes. */
export function formatMemoryCheck(title: string, m: MemoryCheck): string {
  const rows = [['category', 'plan MB', 'accounted MB', 'diff bytes']];
  for (const c of MEMORY_CATEGORIES) rows.push([c, MB(m.byCategory[c].planned), MB(m.byCategory[c].accounted), String(m.byCategory[c].diff)]);
  rows.push(['total', MB(m.total.planned), MB(m.total.accounted), String(m.total.diff)]);
  rows.push(['peak', MB(m.peak.planned), MB(m.peak.accounted), String(m.peak.diff)]);
  const w = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  return [title, ...rows.map((r) => r.map((v, i) => (i ? v.padStart(w[i]) : v.padEnd(w[i]))).join('  '))].join('\n');
}
