/** One line per TTT step (its loss before the step, 4 decimals, and its time) and the live chart. */
import type { TrainStep } from '../store.ts';
import { formatMs } from '../format.ts';
import { LossChart } from './LossChart.tsx';

export function TrainingSteps({ steps, planned }: { steps: TrainStep[]; planned: number }) {
  if (planned === 0 && steps.length === 0) return null;
  return (
    <div className="training">
      <ol aria-label="Training steps" className="steps">
        {steps.map((s) => (
          <li key={s.step}>
            Step {s.step} of {s.steps}: loss {s.loss.toFixed(4)} <span className="note">({formatMs(s.ms)})</span>
          </li>
        ))}
      </ol>
      <LossChart losses={steps.map((s) => s.loss)} />
    </div>
  );
}
