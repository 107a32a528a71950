// Helpers shared by the seed loader and the bulk key import: batched store calls, and JSON
// errors described by place without quoting the text.

/**
 * Bounded concurrency: `size` concurrent calls at a time (ioredis pipelines each batch into few
 * round trips), one batch after the other; results in input order.
 */
export async function mapInBatches<T, R>(items: readonly T[], size: number, fn: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const out: R[] = [];
  for (let start = 0; start < items.length; start += size) {
    const batch = items.slice(start, start + size);
    out.push(...(await Promise.all(batch.map((item, i) => fn(item, start + i)))));
  }
  return out;
}

/** `items` cut into consecutive lists of at most `size`. */
export function chunk<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let start = 0; start < items.length; start += size) out.push(items.slice(start, start + size));
  return out;
}

/**
 * Keeps up to `depth` batch calls in flight (the next batch is read and parsed while Redis
 * answers the ones before) and hands their results to `consume` in the order they were started,
 * so counts, messages and errors come out as if the batches ran one after the other.
 */
export class InOrderWindow<T> {
  private readonly pending: Promise<T>[] = [];

  constructor(
    private readonly depth: number,
    private readonly consume: (result: T) => void,
  ) {}

  /** Adds a started call; waits while `depth` calls are in flight. Throws the first failure in order. */
  async push(call: Promise<T>): Promise<void> {
    call.catch(() => {}); // observed when its turn comes; later ones may be abandoned after a failure
    this.pending.push(call);
    while (this.pending.length >= this.depth) this.consume(await this.pending.shift()!);
  }

  /** Waits for every call still in flight. */
  async drain(): Promise<void> {
    while (this.pending.length > 0) this.consume(await this.pending.shift()!);
  }
}

/** The character offset where JSON.parse failed, when its message names one. */
export function jsonErrorPosition(err: unknown): number | null {
  const match = err instanceof Error ? /position (\d+)/.exec(err.message) : null;
  return match ? Number(match[1]) : null;
}

/** Why JSON.parse failed, with the place (`line L, column C`) but never the text (it may hold secrets). */
export function describeJsonError(err: unknown, text: string): string {
  const position = jsonErrorPosition(err);
  if (position === null) return err instanceof Error && /end of JSON input/.test(err.message) ? 'not valid JSON: the text ends too early' : 'not valid JSON';
  const before = text.slice(0, position);
  const line = before.split('\n').length;
  const column = position - before.lastIndexOf('\n');
  return `not valid JSON at line ${line}, column ${column}`;
}
