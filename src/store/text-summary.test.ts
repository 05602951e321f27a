// The page's words for plain text: the Data panel's text report sentence and Compare's perplexity line.
import { describe, expect, it } from 'vitest';
import { textReport, textRecords, splitText } from '../data/text';
import { charTokenizer } from '../testing/tokenizers';
import { formatTotals } from './compare';
import { textSummary } from './data';

describe('plain text in the page', () => {
  it("the Data panel's sentence: size, documents and paragraphs, windows, what is held out", () => {
    const lines = ['One two.', '', 'Three.', '<|endoftext|>', 'Four.', '', 'Five six.', '<|endoftext|>', 'Seven.'];
    const split = splitText(textRecords(lines).records, { valFraction: 0.34, seed: 0 });
    expect(split.by).toBe('document');
    const r = textReport(split, { tokenizer: charTokenizer(), seqLen: 8 });
    const heldParas = split.val.length;
    expect(textSummary(r)).toBe(
      `${r.characters} characters, ${r.tokens} tokens in 3 documents, 5 paragraphs; ${r.windows!.train} training windows of 8 tokens, ${r.windows!.val} held out; ` +
        `held out: 1 whole document (${heldParas} paragraph${heldParas === 1 ? '' : 's'}), ${(r.split.share * 100).toFixed(1)}% of the tokens.`,
    );
    const byPara = textReport(splitText(textRecords(['a', '', 'b', '', 'c']).records, { valFraction: 0.2, seed: 1 }));
    expect(textSummary(byPara)).toBe(`${byPara.characters} characters in 1 document, 3 paragraphs; held out: 1 whole paragraph, ${(byPara.split.share * 100).toFixed(1)}% of the characters.`);
  });

  it("Compare's totals carry the held-out perplexity for plain text only", () => {
    const t = { n: 2, base: { exact: 0, overlap: 0.1, loss: 2 }, tuned: { exact: 0, overlap: 0.5, loss: 1 } };
    expect(formatTotals(t).ppl).toBeUndefined();
    expect(formatTotals({ ...t, ppl: { base: 95.281, tuned: 2.3319, tokens: 575 } }).ppl).toBe('held-out perplexity: base 95.28 → tuned 2.33');
  });
});
