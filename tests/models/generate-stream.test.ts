import { describe, expect, it } from 'vitest';
import { generate, type ForwardBackend } from '../../models/generate.ts';
import type { Tokenizer } from '../../models/tokenizer.ts';

// Byte-level vocabulary: id i decodes to byte i, so a multi-byte character spans several tokens.
const byteTokenizer = {
  decode: (ids: number[]) => new TextDecoder().decode(Uint8Array.from(ids)),
} as Pick<Tokenizer, 'decode'> as Tokenizer;

/** A backend that emits `script` one id per forward (greedy picks each in turn). */
function scripted(script: number[]): ForwardBackend {
  let step = 0;
  return {
    maxContext: 1024,
    resetCache: () => { step = 0; },
    forward: () => {
      const logits = new Float32Array(256);
      logits[script[Math.min(step++, script.length - 1)]!] = 1;
      return logits;
    },
  };
}

describe('generate streams the new text only', () => {
  it('each token event carries its own piece; the pieces concatenate to the result text', async () => {
    const text = 'ab é 🙂 z';
    const script = [...new TextEncoder().encode(text)];
    const events: { id: number; text: string }[] = [];
    const r = await generate(scripted(script), byteTokenizer, [1], [], { maxNewTokens: script.length, onToken: (id, piece) => events.push({ id, text: piece }) });
    expect(r.text).toBe(text);
    expect(events.length).toBe(script.length);
    expect(events.map((e) => e.id)).toEqual(script);
    expect(events.map((e) => e.text).join('')).toBe(text);
    // The 4-byte emoji: three empty events, then the character alone (never the text so far).
    const at = text.indexOf('🙂');
    const emojiStart = new TextEncoder().encode(text.slice(0, at)).length;
    expect(events.slice(emojiStart, emojiStart + 4).map((e) => e.text)).toEqual(['', '', '', '🙂']);
    expect(Math.max(...events.map((e) => e.text.length))).toBeLessThanOrEqual(2);
  });
});
