import { AskPanel } from './components/AskPanel.tsx';
import { CorpusPanel } from './components/CorpusPanel.tsx';
import { EvaluatePanel } from './components/EvaluatePanel.tsx';
import { Footer } from './components/Footer.tsx';
import { HistoryPanel } from './components/HistoryPanel.tsx';
import { ModelManager } from './components/ModelManager.tsx';
import { OfflineStatus } from './components/OfflineStatus.tsx';
import { Results } from './components/Results.tsx';
import { SettingsPanel } from './components/SettingsPanel.tsx';
import { StoragePanel } from './components/StoragePanel.tsx';
import { Welcome } from './components/Welcome.tsx';
import { useApp } from './store.ts';

export function App() {
  const idle = useApp((s) => s.ask.status === 'idle');
  return (
    <>
      <header className="header">
        <div>
          <h1>FineMed TTT</h1>
          <p>Medical reasoning with FineMedLM-o1 and test-time training, in your browser.</p>
        </div>
        <OfflineStatus />
      </header>
      <main className="layout">
        <div className="column main-column">
          <AskPanel />
          {idle ? <Welcome /> : <Results />}
          <EvaluatePanel />
        </div>
        <aside className="column side-column">
          <ModelManager />
          <CorpusPanel />
          <StoragePanel />
          <SettingsPanel />
          <HistoryPanel />
        </aside>
      </main>
      <Footer />
    </>
  );
}
