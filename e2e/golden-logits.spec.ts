// All 512 logits at position 0 (after BOS), computed in the browser worker on the project's
// backend, against the independent numpy reference in golden.json.
import { expect, test } from './fixtures';
import { goldenAvailable, loadGolden } from './golden';

test.skip(!goldenAvailable(), 'needs ../shared/reference-models/stories260K beside the repository');

test('logits after BOS match the reference within 1e-4', async ({ tabtune, backend }, testInfo) => {
  const golden = loadGolden().logits_pos0_after_bos;
  await tabtune.open({ model: 'stories260K' });
  await tabtune.whenModelReady();
  expect((await tabtune.getBackend()).backend).toBe(backend);

  const { logits, vocabSize } = await tabtune.forward([1]);
  expect(vocabSize).toBe(512);
  expect(logits).toHaveLength(golden.all.length);
  let maxDiff = 0;
  let at = -1;
  logits.forEach((v, i) => {
    const d = Math.abs(v - golden.all[i]!);
    if (!(d <= maxDiff)) [maxDiff, at] = [d, i];
  });
  console.log(`[${testInfo.project.name}] max |logit - golden| over ${logits.length} logits = ${maxDiff.toExponential(3)} (at id ${at})`);
  testInfo.annotations.push({ type: 'max-abs-logit-diff', description: `${testInfo.project.name}: ${maxDiff.toExponential(3)}` });
  expect(maxDiff).toBeLessThanOrEqual(1e-4);
  expect(logits.indexOf(Math.max(...logits))).toBe(golden.argmax);
});
