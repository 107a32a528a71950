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
