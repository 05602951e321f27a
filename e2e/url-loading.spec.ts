// The model-load form takes a URL. A second local origin (e2e/fixture-server.mjs) plays a model
// host: a working folder (the bundled tabtune-tiny), a 404, one without CORS headers, and an
// unsupported architecture. Nothing here needs ../shared.
import { expect, test } from './fixtures';
import { engineGreedy, TINY, TINY_PROMPT } from './engine';

test('loads a model from a URL on another origin', async ({ tabtune, fixtureOrigin }) => {
  const expected = await engineGreedy(TINY, TINY_PROMPT, 8);
  await tabtune.open();
  await tabtune.whenModelReady();

  const url = `${fixtureOrigin}/models/${TINY}/`;
  await tabtune.model.loadFromUrl(url);
  await expect(tabtune.model.summary).toContainText(TINY);
  expect((await tabtune.page.evaluate(() => window.__tabtune!.state().model.summary?.label)) ?? '').toBe(url.replace(/\/$/, ''));
  await tabtune.shot('loaded-from-url');

  await tabtune.generate.fill({ prompt: TINY_PROMPT, maxNewTokens: 8, temperature: 0 });
  await tabtune.generate.run();
  expect(await tabtune.lastTokens()).toEqual(expected.tokens);
});

test('explains a URL that 404s, one without CORS, an unsupported model and bad input', async ({ tabtune, fixtureOrigin }) => {
  await tabtune.open();
  await tabtune.whenModelReady();

  await tabtune.model.loadFromUrl(`${fixtureOrigin}/no-such-model/`);
  await expect(tabtune.model.error).toContainText(`The model ${fixtureOrigin}/no-such-model could not be loaded`);
  await expect(tabtune.model.error).toContainText('config.json not found');
  await expect(tabtune.model.error).toContainText('MISSING_FILE');
  // The working model stays loaded (issue 18).
  await expect(tabtune.model.error).toContainText('is still loaded and in use');
  await expect(tabtune.generate.generateButton).toBeEnabled();
  await tabtune.shot('404');

  await tabtune.model.loadFromUrl(`${fixtureOrigin}/no-cors/${TINY}/`);
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
