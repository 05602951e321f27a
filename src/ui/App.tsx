import { BackendPanel } from './BackendPanel';
import { GeneratePanel } from './GeneratePanel';
import { ModelPanel } from './ModelPanel';

export function App() {
  return (
    <>
      <header className="top">
        <h1>tabtune</h1>
        <p className="tagline">Small language models, run and fine-tuned entirely in this browser tab.</p>
      </header>
      <main>
        <BackendPanel />
        <ModelPanel />
        <GeneratePanel />
      </main>
    </>
  );
}
