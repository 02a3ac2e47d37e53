import { InvalidInputError } from '../errors.ts';

/**
 * Checks a training sequence (shared by the CPU and GPU trainers); returns the number of predicted
 * tokens. mask[t] = 1 means token t is a target (predicted from position t - 1), as in the golden
 * files. InvalidInputError for an empty or too long sequence, ids outside the vocabulary, a mask
 * of another length or with values other than 0/1, or a mask that selects no token to predict.
 */
export function validateTrainingSequence(ids: ArrayLike<number>, lossMask: ArrayLike<number>, maxTokens: number, vocabSize: number): number {
  const T = ids.length;
  if (T === 0) throw new InvalidInputError('Training needs at least two tokens; got none.');
  if (lossMask.length !== T) throw new InvalidInputError(`The loss mask has ${lossMask.length} entries but there are ${T} ids.`);
  if (T > maxTokens) throw new InvalidInputError(`Sequence of ${T} tokens exceeds the context of ${maxTokens}.`);
  for (let t = 0; t < T; t++) {
    const id = ids[t];
    if (!Number.isInteger(id) || id < 0 || id >= vocabSize) throw new InvalidInputError(`Token id ${id} is outside the vocabulary (0..${vocabSize - 1}) at position ${t}.`);
  }
  let active = 0;
  for (let t = 0; t < T; t++) {
    const m = lossMask[t];
    if (m !== 0 && m !== 1) throw new InvalidInputError(`Loss mask values must be 0 or 1; mask[${t}] = ${m}.`);
    if (t > 0 && m === 1) active++;
  }
  if (active === 0) {
    throw new InvalidInputError('The loss mask selects no token to predict: set mask[t] = 1 for some t >= 1 (token 0 is never predicted).');
  }
  return active;
}
