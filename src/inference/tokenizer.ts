/**
 * Title tokenizer: the bundle's tokenizer.json run by Hugging Face's JavaScript tokenizers, with the padding and
 * truncation the encoder was trained with. Its ids must equal the Python tokenizer's (test/inference/tokenizer.test.ts).
 */
import { readFile } from 'node:fs/promises';
import { Tokenizer } from '@huggingface/tokenizers';

export interface TokenizerSettings {
  maxLength: number;
  padTokenId: number;
  addSpecialTokens: boolean;
}

/** A right-padded batch of token ids, laid out row-major as onnxruntime wants it. */
export interface TokenBatch {
  inputIds: BigInt64Array;
  attentionMask: BigInt64Array;
  batchSize: number;
  length: number;
}

export class TitleTokenizer {
  private constructor(
    private readonly tokenizer: Tokenizer,
    readonly settings: TokenizerSettings,
  ) {}

  static async fromFile(file: string, settings: TokenizerSettings): Promise<TitleTokenizer> {
    const json = JSON.parse(await readFile(file, 'utf8'));
    return new TitleTokenizer(new Tokenizer(json, {}), settings);
  }

  /** Token ids of one title, truncated to maxLength. */
  ids(title: string): number[] {
    const { ids } = this.tokenizer.encode(title, { add_special_tokens: this.settings.addSpecialTokens });
    return ids.slice(0, this.settings.maxLength);
  }

  /** Tokenizes titles into one batch padded to its longest title. */
  batch(titles: readonly string[]): TokenBatch {
    const rows = titles.map((title) => this.ids(title));
    const empty = rows.findIndex((row) => row.length === 0);
    if (empty >= 0) throw new Error(`title ${JSON.stringify(titles[empty])} has no tokens`);
    const length = Math.max(...rows.map((row) => row.length));
    const inputIds = new BigInt64Array(rows.length * length).fill(BigInt(this.settings.padTokenId));
    const attentionMask = new BigInt64Array(rows.length * length);
    rows.forEach((row, r) => {
      row.forEach((id, t) => {
        inputIds[r * length + t] = BigInt(id);
        attentionMask[r * length + t] = 1n;
      });
    });
    return { inputIds, attentionMask, batchSize: rows.length, length };
  }
}
