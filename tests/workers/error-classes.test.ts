/**
 * Errors keep their class across the worker boundary: every EngineError subclass of the engine,
 * the retrieval and the evaluation modules goes serialize -> structuredClone (postMessage) ->
 * deserialize and comes back an instance of itself, with its name, code, message and extra fields.
 * The table below must name every exported subclass, so a new class cannot be forgotten.
 */
import { describe, expect, it } from 'vitest';
import * as engineErrors from '../../models/errors.ts';
import { EngineError, deserializeError, registerErrorClasses, serializeError } from '../../models/errors.ts';
import * as evalErrors from '../../models/eval/errors.ts';
import * as retrievalErrors from '../../models/retrieval/errors.ts';

const E = { ...engineErrors, ...retrievalErrors, ...evalErrors };

/** One instance of each class, with its extra fields filled in. */
const SAMPLES: Record<string, () => EngineError> = {
  EngineError: () => new EngineError('internal', 'something broke'),
  ConfigError: () => new E.ConfigError('config.json: rope_scaling.rope_type "yarn" is not supported'),
  WeightsFormatError: () => new E.WeightsFormatError('model.safetensors: header larger than the file'),
  WeightsMismatchError: () => new E.WeightsMismatchError('tensor "lm_head.weight" has shape [2, 3]'),
  UnsupportedDtypeError: () => new E.UnsupportedDtypeError('I8 is not supported'),
  NotFoundError: () => new E.NotFoundError('config.json: 404'),
  NetworkError: () => new E.NetworkError('fetch failed', { cause: new Error('ECONNRESET') }),
  GpuUnavailableError: () => new E.GpuUnavailableError('navigator.gpu is missing'),
  GpuOutOfMemoryError: () => new E.GpuOutOfMemoryError('out of memory'),
  GpuValidationError: () => new E.GpuValidationError('WebGPU rejected a command during a decode step: binding size too large'),
  GpuInternalError: () => new E.GpuInternalError('The GPU failed a command during the load (internal error)'),
  DeviceLostError: () => new E.DeviceLostError('The GPU device was lost.'),
  AbortError: () => new E.AbortError(),
  InvalidInputError: () => new E.InvalidInputError('id 99999 is outside the vocabulary'),
  StorageQuotaError: () => new E.StorageQuotaError('quota exhausted'),
  CacheCorruptError: () => new E.CacheCorruptError('model.norm.weight fails its checksum'),
  DeviceLimitsError: () => new E.DeviceLimitsError('kv cache exceeds maxBufferSize', [
    { buffer: 'kv cache', bytes: 3_000_000_000, limit: 'maxBufferSize', limitBytes: 2 ** 31 },
    { buffer: 'embeddings', bytes: 2_200_000_000, limit: 'maxStorageBufferBindingSize', limitBytes: 2 ** 30 },
  ]),
  TokenizerError: () => new E.TokenizerError('tokenizer.json is missing'),
  CorpusFormatError: () => new E.CorpusFormatError('Line 2: field "question" is missing', [{ line: 2, reason: 'field "question" is missing' }]),
  DimensionsError: () => new E.DimensionsError('1024 dims exceed voy\'s 768'),
  IndexFormatError: () => new E.IndexFormatError('vectors.bin is truncated'),
  StaleIndexError: () => new E.StaleIndexError(['dtype changed (fp32 -> q8)', 'corpus changed']),
  McqFormatError: () => new E.McqFormatError('line 2: field "options" is missing', [{ line: 2, reason: 'field "options" is missing' }]),
  EvalLogError: () => new E.EvalLogError('the log was written with other settings'),
};

/** Own fields beyond name, code and message (the ones that must survive). */
function extraFields(e: EngineError): Record<string, unknown> {
  return Object.fromEntries(Object.entries(e).filter(([k]) => k !== 'name' && k !== 'code'));
}

const exportedClasses = Object.entries(E).filter(
  ([, v]) => typeof v === 'function' && (v === EngineError || v.prototype instanceof EngineError),
) as [string, typeof EngineError][];

describe('errors across the worker boundary', () => {
  it('the table covers every exported EngineError class', () => {
    expect(exportedClasses.length).toBe(24);
    expect(Object.keys(SAMPLES).sort()).toEqual(exportedClasses.map(([name]) => name).sort());
  });

  for (const [name, make] of Object.entries(SAMPLES)) {
    it(`${name} comes back as itself`, () => {
      const original = make();
      const cls = E[name as keyof typeof E] as unknown as typeof EngineError;
      // The registered name is the export name, not a minifier's.
      expect(original.name).toBe(name);
      const wire = structuredClone(serializeError(original));
      const back = deserializeError(wire);
      expect(back).toBeInstanceOf(cls);
      expect(back).toBeInstanceOf(EngineError);
      expect(back.constructor).toBe(cls);
      expect(back.name).toBe(name);
      expect(back.code).toBe(original.code);
      expect(back.message).toBe(original.message);
      expect(extraFields(back)).toEqual(extraFields(original));
    });
  }

  it('DeviceLimitsError keeps its problems, in order', () => {
    const original = SAMPLES.DeviceLimitsError!() as engineErrors.DeviceLimitsError;
    const back = deserializeError(structuredClone(serializeError(original))) as engineErrors.DeviceLimitsError;
    expect(back.problems).toHaveLength(2);
    expect(back.problems).toEqual(original.problems);
  });

  it('a class with no extra fields serializes to name, code and message only', () => {
    expect(serializeError(new E.DeviceLostError('lost'))).toEqual({ name: 'DeviceLostError', code: 'device-lost', message: 'lost' });
  });

  it('a name not registered here comes back as EngineError keeping that name and code', () => {
    const back = deserializeError({ name: 'SomeFutureError', code: 'network', message: 'later' });
    expect(back.constructor).toBe(EngineError);
    expect(back).toMatchObject({ name: 'SomeFutureError', code: 'network', message: 'later' });
  });

  it('a DOM AbortError and a QuotaExceededError come back as the engine classes', () => {
    const abort = deserializeError(serializeError(Object.assign(new Error('stop'), { name: 'AbortError' })));
    expect(abort).toBeInstanceOf(E.AbortError);
    const quota = deserializeError(serializeError(Object.assign(new Error('full'), { name: 'QuotaExceededError' })));
    expect(quota).toBeInstanceOf(E.StorageQuotaError);
  });

  it('details cannot overwrite name, code or message', () => {
    const back = deserializeError({ name: 'NotFoundError', code: 'not-found', message: 'x', details: { name: 'Evil', code: 'internal', message: 'y', extra: 1 } });
    expect(back).toBeInstanceOf(E.NotFoundError);
    expect(back).toMatchObject({ name: 'NotFoundError', code: 'not-found', message: 'x', extra: 1 });
  });

  it('registration names a class by its key, which a minifier leaves alone', () => {
    const Renamed = class extends EngineError {};
    registerErrorClasses({ StableNameError: Renamed });
    const e = new Renamed('internal', 'z');
    expect(e.name).toBe('StableNameError');
    expect(deserializeError(serializeError(e))).toBeInstanceOf(Renamed);
  });
});
