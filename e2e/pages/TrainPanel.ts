// The Train panel: presets, advanced settings, the controls, live stats and the charts.
import type { Locator, Page } from '@playwright/test';

export interface SeriesSnapshot {
  runId: string | null;
  steps: number[];
  loss: (number | null)[];
  smooth: (number | null)[];
  val: (number | null)[];
  lr: (number | null)[];
  grad: (number | null)[];
}

export class TrainPanel {
  readonly region: Locator;
  readonly start: Locator;
  readonly pause: Locator;
  readonly resume: Locator;
  readonly cancel: Locator;
  readonly stats: Locator;
  readonly outcome: Locator;
  readonly plan: Locator;
  /** The memory plan's note when the batch trains in smaller micro-batches (before the run starts). */
  readonly memoryPlan: Locator;
  /** The run's warnings (the worker's, once it started). */
  readonly runWarnings: Locator;
  /** The Recompute activations switch beside the memory line, and its help (which says when a run fits only with it). */
  readonly recompute: Locator;
  readonly recomputeHelp: Locator;
  readonly phase: Locator;
  readonly lossChart: Locator;
  readonly lrChart: Locator;
  readonly logScale: Locator;
  readonly error: Locator;
  /** General skill (the forgetting probe) and generated answers over steps, and the latest evaluation's detail. */
  readonly skillChart: Locator;
  readonly taskChart: Locator;
  /** Plain text: the held-out perplexity chart (tuned and base) and its one-line summary. */
  readonly perplexityChart: Locator;
  readonly perplexitySummary: Locator;
  readonly evalDetails: Locator;
  /** "Stopped early: …" in the end-of-run notice, and its recommendation. */
  readonly stoppedBy: Locator;
  readonly recommendation: Locator;
  /** What to train (LoRA / OFT / prompt tuning), the picked one's trade-off and why others are unavailable. */
  readonly method: Locator;
  readonly methodTradeoff: Locator;
  /** SFT / DPO; the offer shown for preference-only data and the objective's data problem. */
  readonly dpoOffer: Locator;
  readonly objectiveProblem: Locator;
  /** DPO: where it starts (base model or a run) and the checkpoint of that run. */
  readonly startFrom: Locator;
  readonly startStep: Locator;
  /** DPO's charts and the falling logps/chosen warning. */
  readonly dpoRewardsChart: Locator;
  readonly dpoAccuracyChart: Locator;
  readonly dpoLogpsChart: Locator;
  readonly logpsWarning: Locator;

  constructor(private readonly page: Page) {
    this.region = page.getByRole('region', { name: 'Train' });
    this.start = this.region.getByRole('button', { name: /^(Start training|Train again)$/ });
    this.pause = this.region.getByRole('button', { name: 'Pause' });
    this.resume = this.region.getByRole('button', { name: 'Resume' });
    this.cancel = this.region.getByRole('button', { name: 'Cancel' });
    this.stats = this.region.getByTestId('train-stats');
    this.outcome = this.region.getByTestId('train-outcome');
    this.plan = this.region.getByTestId('train-plan');
    this.memoryPlan = this.region.getByTestId('memory-plan');
    this.runWarnings = this.region.getByTestId('run-warning');
    this.recompute = this.region.getByRole('checkbox', { name: 'Recompute activations' });
    this.recomputeHelp = this.region.locator('.field.recompute .help');
    this.phase = this.region.getByTestId('train-phase');
    this.lossChart = this.region.getByTestId('loss-chart');
    this.lrChart = this.region.getByTestId('lr-chart');
    this.logScale = this.region.getByLabel('Log scale');
    this.error = this.region.getByRole('alert');
    this.skillChart = this.region.getByTestId('skill-chart');
    this.taskChart = this.region.getByTestId('task-chart');
    this.perplexityChart = this.region.getByTestId('perplexity-chart');
    this.perplexitySummary = this.region.getByTestId('perplexity-summary');
    this.evalDetails = this.region.getByTestId('eval-details');
    this.stoppedBy = this.region.getByTestId('train-stopped-by');
    this.recommendation = this.region.getByTestId('train-recommendation');
    this.method = this.region.getByLabel('What to train');
    this.methodTradeoff = this.region.getByTestId('method-tradeoff');
    this.dpoOffer = this.region.getByTestId('dpo-offer');
    this.objectiveProblem = this.region.getByTestId('objective-problem');
    this.startFrom = this.region.getByLabel('Start from', { exact: true });
    this.startStep = this.region.getByLabel('Checkpoint to start from');
    this.dpoRewardsChart = this.region.getByTestId('dpo-rewards-chart');
    this.dpoAccuracyChart = this.region.getByTestId('dpo-accuracy-chart');
    this.dpoLogpsChart = this.region.getByTestId('dpo-logps-chart');
    this.logpsWarning = this.region.getByTestId('logps-warning');
  }

  /** Picks the objective: SFT or DPO (radio buttons, as the keyboard would). */
  async objective(which: 'SFT' | 'DPO'): Promise<void> {
    await this.region.getByRole('radio', { name: which === 'SFT' ? 'Supervised fine-tuning (SFT)' : 'Preference tuning (DPO)' }).check();
  }

  /** The objective's statistics in the chart's data, by name (StepPoint.extra and the evaluations' eval_ ones). */
  extras(): Promise<{ steps: number[]; step: Record<string, (number | null)[]>; eval: Record<string, (number | null)[]> }> {
    return this.page.evaluate(() => {
      const s = window.__tabtune!.state().live.series;
      const copy = (g: Record<string, (number | null)[]>) => Object.fromEntries(Object.entries(g).map(([k, v]) => [k, [...v]]));
      return { steps: [...s.step], step: copy(s.stepExtra), eval: copy(s.evalExtra) };
    });
  }

  async preset(label: 'Quick' | 'Balanced' | 'Thorough'): Promise<void> {
    await this.region.getByRole('radio', { name: label }).check();
  }

  /** Opens Advanced and fills numeric settings by their labels ("Steps", "Batch size", …). */
  async advanced(values: Record<string, number>): Promise<void> {
    const details = this.region.locator('details.advanced');
    if (!(await details.evaluate((d) => (d as HTMLDetailsElement).open))) await this.region.getByText('Advanced settings').click();
    for (const [label, v] of Object.entries(values)) await this.region.getByLabel(label, { exact: true }).fill(String(v));
  }

  /** The memory line's activations in MB ("activations 1,043 MB" in the plan). */
  async activationsMB(): Promise<number> {
    const m = /activations ([\d,]+) MB/.exec((await this.plan.textContent()) ?? '');
    if (!m) throw new Error('the Train panel shows no memory line');
    return Number(m[1]!.replace(/,/g, ''));
  }

  /** Opens "When to stop" and fills its settings by their labels ("Early-stopping patience", …); `bestBy` picks the criterion. */
  async whenToStop(values: Record<string, number>, bestBy?: 'Validation loss (lower)' | 'Exact match (higher)'): Promise<void> {
    const details = this.region.locator('details.when-to-stop');
    if (!(await details.evaluate((d) => (d as HTMLDetailsElement).open))) await details.locator('summary').click();
    if (bestBy) await this.region.getByLabel('Best checkpoint by').selectOption({ label: bestBy });
    for (const [label, v] of Object.entries(values)) await this.region.getByLabel(label, { exact: true }).fill(String(v));
  }

  /** The chart's data as the store holds it (what uPlot draws). */
  series(): Promise<SeriesSnapshot> {
    return this.page.evaluate(() => {
      const live = window.__tabtune!.state().live;
      const s = live.series;
      return { runId: live.runId, steps: [...s.step], loss: [...s.loss], smooth: [...s.smooth], val: [...s.val], lr: [...s.lr], grad: [...s.grad] };
    });
  }
}
