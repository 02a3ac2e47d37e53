import { describe, expect, it } from 'vitest';
import { CacheCorruptError, DeviceLostError, deserializeError, serializeError } from '../../models/errors.ts';

describe('serializeError', () => {
  it('keeps an engine error\'s name, code and message across the worker boundary', () => {
    const s = serializeError(new CacheCorruptError('model.norm.weight fails its checksum'));
    expect(s).toEqual({ name: 'CacheCorruptError', code: 'cache-corrupt', message: 'model.norm.weight fails its checksum' });
    expect(deserializeError(s)).toMatchObject({ name: 'CacheCorruptError', code: 'cache-corrupt' });
    expect(serializeError(new DeviceLostError('lost')).code).toBe('device-lost');
  });

  it("turns a browser storage API's QuotaExceededError into storage-quota, wherever it came from", () => {
    const dom = Object.assign(new Error('The operation failed because it would cause the application to exceed its storage quota.'), { name: 'QuotaExceededError' });
    const s = serializeError(dom);
    expect(s.code).toBe('storage-quota');
    expect(s.name).toBe('StorageQuotaError');
    expect(s.message).toMatch(/storage quota is exhausted.*Free space/);
  });

  it('unknown errors become internal, aborts aborted', () => {
    expect(serializeError(new Error('x'))).toEqual({ name: 'EngineError', code: 'internal', message: 'x' });
    expect(serializeError('plain string').code).toBe('internal');
    expect(serializeError(Object.assign(new Error('stop'), { name: 'AbortError' })).code).toBe('aborted');
  });
});
