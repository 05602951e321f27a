// The Trade-off panel (src/ui/TradeoffPanel.tsx): the selected run's checkpoints and path points as task vs
// forgetting, the recommendation, Rewind to recommended, Explore path and Apply.
import type { Locator, Page } from '@playwright/test';

export class TradeoffPanel {
  readonly region: Locator;
  readonly chart: Locator;
  readonly points: Locator;
  readonly recommendation: Locator;
  readonly rewind: Locator;
  readonly explore: Locator;
  readonly cancel: Locator;
  readonly progress: Locator;
  readonly card: Locator;
  readonly applied: Locator;
  readonly empty: Locator;
  readonly errors: Locator;
  /** Other runs on the same data: their checkboxes, their points on the chart, the sentence about the front. */
  readonly compare: Locator;
  readonly compareEmpty: Locator;
  readonly otherPoints: Locator;
  readonly compareSummary: Locator;

  constructor(page: Page) {
    this.region = page.getByRole('region', { name: 'Trade-off', exact: true });
    const r = this.region;
    this.chart = r.getByTestId('tradeoff-chart');
    this.points = r.getByTestId('tradeoff-point');
    this.recommendation = r.getByTestId('tradeoff-recommendation');
    this.rewind = r.getByRole('button', { name: 'Rewind to recommended' });
    this.explore = r.getByRole('button', { name: /^Explore path/ });
    this.cancel = r.getByRole('button', { name: 'Cancel' });
    this.progress = r.getByTestId('explore-progress');
    this.card = r.getByTestId('tradeoff-point-card');
    this.applied = r.getByTestId('apply-made');
    this.empty = r.getByTestId('tradeoff-empty');
    this.errors = r.getByRole('alert');
    this.compare = r.getByTestId('tradeoff-compare');
    this.compareEmpty = r.getByTestId('tradeoff-compare-empty');
    this.otherPoints = r.getByTestId('tradeoff-overlay-point');
    this.compareSummary = r.getByTestId('tradeoff-compare-summary');
  }

  /** Points by kind: checkpoints (stored) or path points (explored, stored once applied). */
  pointsOf(kind: 'checkpoint' | 'path'): Locator {
    return this.region.locator(`[data-testid="tradeoff-point"].${kind}`);
  }

  point(id: string): Locator {
    return this.region.locator(`[data-testid="tradeoff-point"][data-point-id="${id}"]`);
  }
}
