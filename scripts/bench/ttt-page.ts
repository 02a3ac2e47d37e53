// Browser side of `npm run bench:ttt`: the same runTttBench as Node, on navigator.gpu.
import { runTttBench, type TttBenchOptions, type TttBenchResult } from './ttt-bench.ts';
import { UrlModelSource } from '../../models/io/url-source.ts';

export type TttPageOptions = Omit<TttBenchOptions, 'stories' | 'log'> & {
  /** stories260K folder URL and its golden LoRA JSON (ids, loss_mask); both or neither. */
  storiesUrl?: string;
  goldenUrl?: string;
};

declare global {
  interface Window {
    runTttBench: (o: TttPageOptions) => Promise<TttBenchResult>;
  }
}

const logEl = document.getElementById('log')!;
window.runTttBench = async (o) => {
  let stories: TttBenchOptions['stories'];
  if (o.storiesUrl && o.goldenUrl) {
    const g = (await (await fetch(o.goldenUrl)).json()) as { ids: number[]; loss_mask: number[] };
    stories = { source: new UrlModelSource(o.storiesUrl), ids: g.ids, mask: g.loss_mask };
  }
  const { storiesUrl: _s, goldenUrl: _g, ...rest } = o;
  return runTttBench(navigator.gpu, {
    ...rest,
    stories,
    log: (line) => { logEl.textContent += '\n' + line; console.log(line); },
  });
};
