/** Always visible (fixed): not medical advice, where it runs, and the Llama attribution once a Llama model is loaded. */
import { useApp } from '../store.ts';

export function Footer() {
  const llamaLoaded = useApp((s) => s.llm.status === 'loaded');
  return (
    <footer className="footer" role="contentinfo">
      <span>Not medical advice; in an emergency call your local emergency number.</span>
      <span>Runs entirely on this device.</span>
      {llamaLoaded && <span>Built with Llama</span>}
    </footer>
  );
}
