// Shapes shared by the loaders and the architectures. Weight names are Hugging Face's, end to end.

export interface WeightTensor {
  shape: number[];
  data: Float32Array;
  /** dtype as stored in the checkpoint (F32, F16, BF16); data is always float32. */
  dtype: string;
}

export type WeightMap = Map<string, WeightTensor>;

/** The raw contents of a Hugging Face model folder, before any architecture is built. */
export interface HFModelFiles {
  config: Record<string, unknown>;
  weights: WeightMap;
  tokenizerJson: Record<string, unknown> | null;
  tokenizerConfig: Record<string, unknown> | null;
  generationConfig: Record<string, unknown> | null;
  /** Bytes of weight files read. */
  weightBytes: number;
}

export type ModelErrorCode = 'UNSUPPORTED_MODEL' | 'MISSING_FILE' | 'BAD_TENSOR' | 'TOO_LARGE' | 'BAD_CONFIG' | 'NETWORK';

export class ModelLoadError extends Error {
  override name = 'ModelLoadError';
  constructor(
    readonly code: ModelErrorCode,
    message: string,
    readonly hint?: string,
  ) {
    super(message);
  }
}
