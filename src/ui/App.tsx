import { BackendPanel } from './BackendPanel';
import { CheckpointsPanel } from './CheckpointsPanel';
import { DataPanel } from './DataPanel';
import { GeneratePanel } from './GeneratePanel';
import { ModelPanel } from './ModelPanel';
import { ResumeBanner, RunsPanel } from './RunsPanel';
import { TradeoffPanel } from './TradeoffPanel';
import { TrainPanel } from './TrainPanel';
import { ComparePanel } from './compare/ComparePanel';
import { ExportPanel } from './export/ExportPanel';
import { ReportPanel } from './report/ReportPanel';
import { DataFixPanel } from './iterate/DataFixPanel';
import { RunsComparePanel } from './iterate/RunsCompareView';

export function App() {
  return (
    <>
      <header className="top">
        <h1>tabtune</h1>
        <p className="tagline">Small language models, run and fine-tuned entirely in this browser tab. Nothing is uploaded.</p>
      </header>
      <ResumeBanner />
      <div className="studio">
        {/* The journey reads top to bottom: the model (and a try of it) on the left, then Data → Train →
            Checkpoints → Trade-off → Compare → Export → Runs on the right. */}
        <aside className="side" aria-label="Model">
          <ModelPanel />
          <BackendPanel />
          <GeneratePanel />
        </aside>
        <main className="journey">
          <DataPanel />
          <DataFixPanel />
          <TrainPanel />
          <CheckpointsPanel />
          <TradeoffPanel />
          <ComparePanel />
          <ExportPanel />
          <ReportPanel />
          <RunsPanel />
          <RunsComparePanel />
        </main>
      </div>
    </>
  );
}
