import { Footer } from './components/Footer.tsx';
import { ModelPanel } from './components/ModelPanel.tsx';
import { OutputPanel } from './components/OutputPanel.tsx';
import { PromptPanel } from './components/PromptPanel.tsx';

export function App() {
  return (
    <>
      <header className="header">
        <h1>FineMed TTT</h1>
        <p>Medical reasoning with a local language model on WebGPU.</p>
      </header>
      <main className="main">
        <ModelPanel />
        <PromptPanel />
        <OutputPanel />
      </main>
      <Footer />
    </>
  );
}
