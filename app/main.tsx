import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import { App } from './App.tsx';
import { registerServiceWorker } from './pwa.ts';
import { applyQueryParams } from './settings-store.ts';
import './styles.css';

// ?model=&embedder=&weights=&backend=&hub= preselect the models (and are remembered).
applyQueryParams(location.search);

const root = document.getElementById('root');
if (!root) throw new Error('index.html has no #root element.');
createRoot(root).render(
  <StrictMode>
    <App />
  </StrictMode>,
);
registerServiceWorker();
