import { describe, expect, it } from 'vitest';
import { parseLlamaConfig, PROJECTIONS } from '../../../models/config.ts';
import { WeightsFormatError, WeightsMismatchError, InvalidInputError } from '../../../models/errors.ts';
import {
  DEFAULT_LORA, initLora, inspectLora, isBZero, loadLora, loraPairs, loraTensorNames, saveLora, zeroB,
} from '../../../models/lora/adapter.ts';
import { encodeSafetensors } from '../../../models/safetensors/writer.ts';

const config = parseLlamaConfig({
  model_type: 'llama', hidden_size: 16, intermediate_size: 24, num_hidden_layers: 2, num_attention_heads: 4,
  num_key_value_heads: 2, vocab_size: 50,
});
const cfg = { rank: 4, alpha: 8, targets: [...PROJECTIONS] };

describe('LoRA adapters', () => {
  it('initLora: PEFT shapes, A uniform in +-1/sqrt(in) and seeded, B = 0', () => {
    const a = initLora(config, cfg, 42);
    expect(a.scale).toBe(2);
    const q = a.layers[0].q_proj!;
    expect([q.A.length, q.B.length]).toEqual([4 * 16, 16 * 4]);
    const down = a.layers[1].down_proj!;
    expect([down.inDim, down.outDim]).toEqual([24, 16]);
    const k = a.layers[0].k_proj!;
    expect(k.outDim).toBe(2 * 4);
    for (const { pair } of loraPairs(a)) {
      const bound = 1 / Math.sqrt(pair.inDim);
      expect(pair.A.every((x) => Math.abs(x) <= bound)).toBe(true);
      expect(Math.max(...pair.A.map(Math.abs))).toBeGreaterThan(0.5 * bound);
      expect(isBZero(pair)).toBe(true);
    }
    expect(initLora(config, cfg, 42)).toEqual(a);
    expect(initLora(config, cfg, 43).layers[0].q_proj!.A).not.toEqual(q.A);
    expect(DEFAULT_LORA).toEqual({ rank: 8, alpha: 16, targets: [...PROJECTIONS] });
  });

  it('rejects bad configs', () => {
    expect(() => initLora(config, { ...cfg, rank: 0 }, 1)).toThrow(InvalidInputError);
    expect(() => initLora(config, { ...cfg, alpha: -1 }, 1)).toThrow(InvalidInputError);
    expect(() => initLora(config, { ...cfg, targets: [] }, 1)).toThrow(InvalidInputError);
    expect(() => initLora(config, { ...cfg, targets: ['x_proj' as never] }, 1)).toThrow(/Unknown LoRA target/);
  });

  it('save/load round trip with PEFT names; subsets of targets; metadata', () => {
    const a = initLora(config, { rank: 2, alpha: 4, targets: ['v_proj', 'q_proj'] }, 7);
    for (const { pair } of loraPairs(a)) pair.B.forEach((_, i) => (pair.B[i] = i * 0.01 - 0.05));
    const bytes = saveLora(a);
    const info = inspectLora(bytes);
    expect(info).toMatchObject({ rank: 2, targets: ['q_proj', 'v_proj'], hasB: true });
    expect(info.metadata).toMatchObject({ rank: '2', alpha: '4', targets: 'q_proj,v_proj' });
    const b = loadLora(bytes, config, { rank: 2, alpha: 4, targets: ['q_proj', 'v_proj'] });
    expect(b).toEqual(a);
    expect(loraTensorNames(1, 'q_proj')).toEqual({
      A: 'model.layers.1.self_attn.q_proj.weight.lora_A', B: 'model.layers.1.self_attn.q_proj.weight.lora_B',
    });
    const text = new TextDecoder().decode(bytes.subarray(0, 400));
    expect(text).toContain('"model.layers.0.self_attn.q_proj.weight.lora_A":{"dtype":"F32","shape":[2,16]');
    // gradients: '.grad' suffix
    const g = loadLora(saveLora(a, { suffix: '.grad' }), config, a.config, { suffix: '.grad' });
    expect(g).toEqual(a);
    zeroB(b);
    expect([...loraPairs(b)].every(({ pair }) => isBZero(pair))).toBe(true);
  });

  it('A-only file loads with allowMissingB, else names the missing tensor', () => {
    const a = initLora(config, cfg, 1);
    const onlyA = encodeSafetensors([...loraPairs(a)].map(({ layer, target, pair }) => ({
      name: loraTensorNames(layer, target).A, dtype: 'F32' as const, shape: [4, pair.inDim], data: pair.A,
    })));
    expect(inspectLora(onlyA).hasB).toBe(false);
    expect(loadLora(onlyA, config, cfg, { allowMissingB: true })).toEqual(a);
    expect(() => loadLora(onlyA, config, cfg, { name: 'init.safetensors' })).toThrow(WeightsMismatchError);
    expect(() => loadLora(onlyA, config, cfg, { name: 'init.safetensors' })).toThrow(
      'init.safetensors: tensor "model.layers.0.self_attn.q_proj.weight.lora_B" is missing (expected shape [16, 4])',
    );
  });

  it('an adapter for another rank, width, depth or target set -> WeightsMismatchError naming the tensor', () => {
    const file = saveLora(initLora(config, cfg, 1));
    const mismatch = (f: () => unknown, msg: string | RegExp) => {
      expect(f).toThrow(WeightsMismatchError);
      expect(f).toThrow(msg);
    };
    mismatch(() => loadLora(file, config, { ...cfg, rank: 8 }), /tensor "model\.layers\.0\.self_attn\.q_proj\.weight\.lora_A" has shape \[4, 16\], expected \[8, 16\]/);
    const wider = { ...config, hiddenSize: 32 };
    mismatch(() => loadLora(file, wider, cfg), /q_proj\.weight\.lora_A" has shape \[4, 16\], expected \[4, 32\]/);
    const shallow = { ...config, numLayers: 1 };
    mismatch(() => loadLora(file, shallow, cfg), /"model\.layers\.1\..*" is an adapter for layer 1, but the model has 1 layers/);
    mismatch(() => loadLora(file, config, { ...cfg, targets: ['q_proj'] }), /k_proj, which is not among the targets \(q_proj\)/);
    const deeper = { ...config, numLayers: 3 };
    mismatch(() => loadLora(file, deeper, cfg), 'tensor "model.layers.2.self_attn.q_proj.weight.lora_A" is missing');
  });

  it('corrupt files -> WeightsFormatError', () => {
    expect(() => loadLora(new Uint8Array(3), config, cfg)).toThrow(WeightsFormatError);
    const file = saveLora(initLora(config, cfg, 1));
    expect(() => loadLora(file.subarray(0, 100), config, cfg)).toThrow(WeightsFormatError);
    expect(() => loadLora(file.subarray(0, file.length - 4), config, cfg)).toThrow(/truncated/);
  });
});
