// Issue 18 #8: the data doctor counts records and speaks plain words. A file with 2 broken lines (line 6
// lacks both fields, its keys misspelled; line 15 lacks its completion) said "3 lines will be skipped" and
// "3 errors" (line 6 counted once per missing field); the good end-of-text case read like a failure ("the
// model predicts its EOS token "</s>" (id 2)… (mean p = 0.0130)"); the format was an id
// ("prompt-completion-jsonl"); "Answer:" appeared in the token preview with no word about where it comes from.
// Now: 2 lines, 2 errors, every reason of line 6 on its one line; plain sentences first, the ids and the
// probabilities behind a toggle; the separator explained. On the bundled tiny model.
import { join } from 'node:path';
import { expect, test } from './fixtures';
import { BUNDLED_EOS, REPO_ROOT } from '../src/testing/models';
import { DataPanel } from './pages/DataPanel';

const FIXTURE = join(REPO_ROOT, 'e2e/fixtures/two-broken-lines.jsonl');

test('the doctor counts broken lines once and says what it found in plain words', async ({ tabtune, page, backend }, testInfo) => {
  test.setTimeout(backend === 'webgpu' ? 600_000 : 120_000);
  await page.setViewportSize({ width: 1280, height: 800 });
  const data = new DataPanel(page);
  await tabtune.open({ model: 'tabtune-tiny' });
  await tabtune.whenModelReady();

  await data.dropPath(FIXTURE);
  const slow = { timeout: backend === 'webgpu' ? 300_000 : 60_000 };
  // Counts are records: 2 broken lines are 2 errors, 2 skipped lines (was 3 and 3).
  await expect(data.counts).toHaveText('22 read, 20 valid, 2 errors, 0 warnings', slow);
  await expect(data.problem).toContainText('2 lines will be skipped');
  await expect(data.region.getByRole('heading', { name: 'Errors (2)' })).toBeVisible();
  await expect(data.issues).toHaveCount(2);
  // Every reason of line 6 on its one line.
  const both = data.issueAtLine(6);
  await expect(both).toContainText('missing fields "prompt" and "completion"');
  await expect(both).toContainText('{"promt": "Write as digits: two hundred nineteen", "complettion": "219"}');
  await expect(data.issueAtLine(15)).toContainText('missing field "completion"');

  await data.report.screenshot({ path: testInfo.outputPath('data-report-closed.png') });

  // The format in plain words; its id on demand.
  await expect(data.format).toHaveText('JSON Lines, prompt/completion pairs');
  await expect(data.formatId).toBeHidden();
  await data.region.getByText('format id', { exact: true }).click();
  await expect(data.formatId).toBeVisible();
  await expect(data.formatId).toHaveText('prompt-completion-jsonl');

  // The end of text: the good case in plain words, the token id and the probabilities behind a toggle.
  await expect(data.stopWords).toHaveText("Replies will end with the model's end-of-text token, which it already uses to end text.");
  const details = data.stopDetails.getByText(/^Mean probability/);
  await expect(details).toBeHidden();
  await data.stopDetails.locator('summary').click();
  await expect(data.stopDetails).toContainText(`Stop token: id ${BUNDLED_EOS}.`);
  await expect(details).toBeVisible();
  await expect(details).toContainText(`end-of-text token (id ${BUNDLED_EOS})`);
  await expect(data.stopDetails).toContainText('Why: the model predicts its EOS token');

  // "Answer:" in the token preview, and a word on where it comes from.
  await expect(data.tokenExample).toContainText('Answer:');
  await expect(data.promptFormatNote).toContainText('"Answer:" is not in your file: tabtune\'s plain prompt format ({prompt}⏎Answer: {completion})');

  await tabtune.shot('doctor-words');
  await data.report.screenshot({ path: testInfo.outputPath('data-report-open.png') });
});
