import { CheckpointsPanel } from './CheckpointsPanel';
import { DataPanel } from './DataPanel';
import { GeneratePanel } from './GeneratePanel';
import { ModelPanel } from './ModelPanel';
import { ResumeBanner, RunsPanel } from './RunsPanel';
import { TradeoffPanel } from './TradeoffPanel';
import { TrainPanel } from './TrainPanel';
import { FirstVisitHint, StepNav, stepAnchor } from './StepNav';
import { CHOOSE_FILE_ID } from './DataPanel';
import { ComparePanel } from './compare/ComparePanel';
import { ExportPanel } from './export/ExportPanel';
import { ReportPanel } from './report/ReportPanel';
import { DataFixPanel } from './iterate/DataFixPanel';
import { RunsComparePanel } from './iterate/RunsCompareView';

/** The first stop of the keyboard: straight to the Data panel's "Choose a file…" (the step a first visit starts with). */
function SkipLink() {
  return (
    <a
      className="skip-link"
      href={`#${CHOOSE_FILE_ID}`}
      onClick={(e) => {
        const target = document.getElementById(CHOOSE_FILE_ID);
        if (!target) return;
        e.preventDefault();
        target.focus();
      }}
    >
      Skip to Choose a file…
    </a>
  );
}

export function App() {
  return (
    <>
      <SkipLink />
      <header className="top">
        <h1>tabtune</h1>
        <p className="tagline">Small language models, run and fine-tuned entirely in this browser tab. Nothing is uploaded.</p>
      </header>
      <StepNav />
      <FirstVisitHint />
      <ResumeBanner />
      <div className="studio">
        {/* The journey's steps (the step nav's anchors) read top to bottom: the model (its engine folded inside),
            a try of it and the stored runs on the left; Data → Train → (checkpoints, trade-off) Compare → Export on the right. */}
        <aside className="side" aria-label="Model and runs">
          <div id={stepAnchor('model')} className="step-section">
            <ModelPanel />
          </div>
          <GeneratePanel />
          <RunsPanel />
        </aside>
        <main className="journey">
          {/* Two columns on wide screens (the steps up to training | what follows it), one below. */}
          <div className="journey-col">
            <div id={stepAnchor('data')} className="step-section">
              <DataPanel />
              <DataFixPanel />
            </div>
            <div id={stepAnchor('train')} className="step-section">
              <TrainPanel />
            </div>
          </div>
          <div className="journey-col">
            <CheckpointsPanel />
            <TradeoffPanel />
            <div id={stepAnchor('compare')} className="step-section">
              <ComparePanel />
            </div>
            <div id={stepAnchor('export')} className="step-section">
              <ExportPanel />
              <ReportPanel />
            </div>
          </div>
          <div className="journey-wide">
            <RunsComparePanel />
          </div>
        </main>
      </div>
    </>
  );
}
