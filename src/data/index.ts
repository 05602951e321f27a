// The dataset pipeline's public surface (browser/worker-safe; Node files: ./node).
export * from './types';
export { IssueLog, MAX_ISSUES, snippet, type IssueSummary } from './issues';
export { blobSource, bytesSource, textSource, toSource, DataReadError, type DataInput, type ReadOptions } from './source';
export { classify, normalize, parseFormatOverride, formatName, parseTranscript, promptKey, recordKey, SCHEMA_LABELS } from './formats';
export { suggestColumns, sniffDelimiter, type TableInfo } from './csv';
export { parseDataset, sniffContainer, describeJsonError, type ParseOptions, type ParsedDataset } from './parse';
export { hash53, DuplicateTracker, checkOverlap, reportDuplicates } from './validate';
export {
  RecordEncoder,
  encodeRecords,
  defaultStop,
  plainPromptText,
  plainCompletionText,
  PLAIN_SEPARATOR,
  PLAIN_FORMAT,
  PLAIN_CHAT_ROLES,
  type EncodeOptions,
  type EncodeResult,
  type StopSpec,
  type TrainingExample,
} from './encode';
export { splitRecords, DEFAULT_VAL_FRACTION, type Split, type SplitOptions } from './split';
export { histogram, lengthStats, renderExample, tokenStats, type Histogram, type LengthStats, type RenderedToken, type TokenStats } from './stats';
export { detectStopToken, endProbabilities, newlineTokenId, NATURAL_PROBE_TEXTS, LEARNED_PROBABILITY, type StopTokenChoice, type StopModel } from './stop-token';
export { inspectDataset, type InspectOptions, type InspectResult, type DataReport, type FileReport } from './doctor';
