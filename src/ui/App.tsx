import { BackendPanel } from './BackendPanel';
import { CheckpointsPanel } from './CheckpointsPanel';
import { DataPanel } from './DataPanel';
import { GeneratePanel } from './GeneratePanel';
import { ModelPanel } from './ModelPanel';
import { ResumeBanner, RunsPanel } from './RunsPanel';
import { TrainPanel } from './TrainPanel';

export function App() {
  return (
    <>
      <header className="top">
        <h1>tabtune</h1>
        <p className="tagline">Small language models, run and fine-tuned entirely in this browser tab. Nothing is uploaded.</p>
      </header>
      <ResumeBanner />
      <div className="studio">
        <aside className="side" aria-label="Model and stored runs">
          <ModelPanel />
          <BackendPanel />
          <RunsPanel />
        </aside>
        <main className="journey">
          <DataPanel />
          <TrainPanel />
          <CheckpointsPanel />
          {/* COMPARE PANEL SLOT: the lead mounts <ComparePanel /> (src/ui/compare) here; it reads the store's `selection`. */}
          {/* EXPORT PANEL SLOT: the lead mounts <ExportPanel /> (src/ui/export) here; it reads the store's `selection`. */}
          <GeneratePanel />
        </main>
      </div>
    </>
  );
}
