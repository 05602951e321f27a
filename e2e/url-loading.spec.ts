// The model-load form takes a URL. A second local origin (e2e/fixture-server.mjs) plays a model
// host: a working folder, a 404, one without CORS headers, and an unsupported architecture.
import { expect, test } from './fixtures';
import { goldenAvailable, greedyContinuation, loadGolden } from './golden';

test.skip(!goldenAvailable(), 'needs ../shared/reference-models/stories260K beside the repository');

test('loads a model from a URL on another origin', async ({ tabtune, fixtureOrigin }) => {
  const golden = greedyContinuation(loadGolden());
  await tabtune.open();
  await tabtune.whenModelReady();

  const url = `${fixtureOrigin}/models/stories260K/`;
  await tabtune.model.loadFromUrl(url);
  await expect(tabtune.model.summary).toContainText('stories260K');
  expect((await tabtune.page.evaluate(() => window.__tabtune!.state().model.summary?.label)) ?? '').toBe(url.replace(/\/$/, ''));
  await tabtune.shot('loaded-from-url');

  await tabtune.generate.fill({ prompt: 'Once upon a time', maxNewTokens: 8, temperature: 0 });
  await tabtune.generate.run();
  expect(await tabtune.lastTokens()).toEqual(golden.tokens.slice(0, 8));
});

test('explains a URL that 404s, one without CORS, an unsupported model and bad input', async ({ tabtune, fixtureOrigin }) => {
  await tabtune.open();
  await tabtune.whenModelReady();

  await tabtune.model.loadFromUrl(`${fixtureOrigin}/no-such-model/`);
  await expect(tabtune.model.error).toContainText(`The model ${fixtureOrigin}/no-such-model could not be loaded`);
  await expect(tabtune.model.error).toContainText('config.json not found');
  await expect(tabtune.model.error).toContainText('MISSING_FILE');
  await expect(tabtune.generate.generateButton).toBeDisabled();
  await tabtune.shot('404');

  await tabtune.model.loadFromUrl(`${fixtureOrigin}/no-cors/stories260K/`);
  await expect(tabtune.model.error).toContainText('Could not download');
  await expect(tabtune.model.error).toContainText('CORS');
  await tabtune.shot('no-cors');

  await tabtune.model.loadFromUrl(`${fixtureOrigin}/unsupported/`);
  await expect(tabtune.model.error).toContainText('model_type "mamba" is not supported');
  await expect(tabtune.model.error).toContainText('UNSUPPORTED_MODEL');
  await tabtune.shot('unsupported');

  await tabtune.model.loadFromUrl('not a model');
  await expect(tabtune.model.error).toContainText('is neither an http(s) URL nor a Hugging Face model id');
  await tabtune.shot('bad-input');
});
