/** `--model <dir|url|repo>`: which source a CLI reads the model from (no request is made). */
import { describe, expect, it } from 'vitest';
import { NodeDirSource } from '../../node/io/node-source.ts';
import { UrlModelSource } from '../../models/io/url-source.ts';
import { modelSource } from '../../scripts/cli-model.ts';
import { ROOT } from '../helpers/shared.ts';

describe('modelSource', () => {
  it('an existing folder, a URL, or a hub repo on the chosen hub', () => {
    expect(modelSource(ROOT)).toBeInstanceOf(NodeDirSource);
    expect(modelSource('tests/fixtures')).toBeInstanceOf(NodeDirSource); // a folder here wins over a repo name
    const url = modelSource('https://example.test/org/m/resolve/main');
    expect(url).toBeInstanceOf(UrlModelSource);
    expect(url.description).toContain('https://example.test/org/m/resolve/main/');
    const repo = modelSource('hongzhouyu/FineMedLM-o1', undefined);
    expect(repo).toBeInstanceOf(UrlModelSource);
    expect(repo.description).toContain('https://huggingface.co/hongzhouyu/FineMedLM-o1/resolve/main/');
    expect(modelSource('test-org/stories260K', 'http://127.0.0.1:8765/hub').description).toContain('http://127.0.0.1:8765/hub/test-org/stories260K/resolve/main/');
    expect(modelSource('no/such/folder')).toBeInstanceOf(NodeDirSource); // not a repo name: reported missing by the folder reader
  });
});
