// `keygate-admin key import FILE`: bulk keys from a large file, streamed line by line.
//
// Formats (the same fields as a seed file's keys, see key-entry.ts):
//   JSON lines   one object per line: {"owner":"acme","plan":"pro","key":"kg_..."}
//   JSON array   [ {...}, {...} ]  (streamed too: elements may span lines)
//   CSV          a header row naming the columns, in any order:
//                owner,plan,key|digest,name,scopes,expires,cidrs,id  (also status, limits, metadata);
//                list cells separate items with ";" or spaces (`read;write`, `10/s;1000/d`),
//                metadata cells are `name=value;name=value`; RFC 4180 quoting; "#" lines are comments.
//
// Two passes. The first reads the whole file and checks every line (fields, duplicates, plans in
// the store, secrets owned by other keys or not opening the stored key of that id), holding only
// small per-line fingerprints (fingerprints.ts: 64 MiB per million lines); any problem → SeedError
// listing the bad lines by number, and nothing is written. The second reads the file again and
// writes the keys in batches. Both passes talk to the store in batch calls (a few pipelined round
// trips per batch, see importKeys) with several batches in flight while the file is read on:
// a million keys in about a minute on two cores (bench/import-1m.mjs).
// Re-importing a file changes nothing (stable ids). If the file changes between the passes, the
// import stops at the first line that no longer checks out (keys before it are written).
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { extname } from 'node:path';
import type { KeyStore } from '../keys/types';
import { InOrderWindow, jsonErrorPosition, mapInBatches } from './batches';
import { DuplicateFinder } from './fingerprints';
import {
  checkKeysAgainstStore,
  ENTRY_FIELDS,
  lineLocation,
  parseKeyEntry,
  writeKeys,
  type EntryKey,
  type EntryOptions,
  type StoreCheck,
  type WriteOutcome,
} from './key-entry';
import { SeedError } from './seed';

export type ImportFormat = 'json' | 'csv';

export interface KeyImportOptions extends EntryOptions {
  store: KeyStore;
  file: string;
  /** Default: from the extension (.csv, .json, .jsonl, .ndjson), else from the first character. */
  format?: ImportFormat;
  dryRun?: boolean;
  /** Keys per batch store call, in both passes (default 500). */
  batchSize?: number;
  /** Called with a progress line every `progressEvery` lines (checking) or keys (writing). */
  onProgress?: (message: string) => void;
  progressEvery?: number;
}

export interface KeyImportResult {
  /** keys in the file */
  keys: number;
  created: number;
  updated: number;
  unchanged: number;
  /** true when nothing was written (the counts say what an import would do) */
  dryRun: boolean;
}

/** The import file cannot be read, or changed while it was being imported. */
export class ImportFileError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ImportFileError';
  }
}

/** Most problems listed in one SeedError; the rest are counted. */
const MAX_LISTED_PROBLEMS = 200;

/** A line of the file (1-based number) without its line break. */
interface Line {
  line: number;
  text: string;
}

/** One item of an import file: an entry (an object to check) or a problem, with its line. */
type FileItem = { line: number; entry: unknown; problem?: undefined } | { line: number; problem: string; entry?: undefined };

const CSV_COLUMNS = ENTRY_FIELDS;
const LIST_COLUMNS = new Set(['scopes', 'cidrs', 'limits']);

function formatFromName(file: string): ImportFormat | undefined {
  const ext = extname(file).toLowerCase();
  if (ext === '.csv') return 'csv';
  if (ext === '.json' || ext === '.jsonl' || ext === '.ndjson') return 'json';
  return undefined;
}

/** Splits one CSV record (which may span lines); 'open' when a quoted field is not closed yet. */
function splitCsvRecord(text: string): string[] | 'open' | { problem: string } {
  const fields: string[] = [];
  let i = 0;
  for (;;) {
    if (text[i] === '"') {
      let value = '';
      i++;
      for (;;) {
        const close = text.indexOf('"', i);
        if (close < 0) return 'open';
        value += text.slice(i, close);
        if (text[close + 1] === '"') {
          value += '"';
          i = close + 2;
        } else {
          i = close + 1;
          break;
        }
      }
      fields.push(value);
      if (i === text.length) return fields;
      if (text[i] !== ',') return { problem: 'a quoted field must be followed by a comma or the end of the line' };
      i++;
    } else {
      const comma = text.indexOf(',', i);
      if (comma < 0) {
        fields.push(text.slice(i).trim());
        return fields;
      }
      fields.push(text.slice(i, comma).trim());
      i = comma + 1;
    }
  }
}

function csvRowToEntry(columns: readonly string[], cells: readonly string[]): { entry: Record<string, unknown> } | { problem: string } {
  const entry: Record<string, unknown> = {};
  for (let c = 0; c < columns.length; c++) {
    const column = columns[c];
    const cell = cells[c].trim();
    if (cell === '') continue;
    if (LIST_COLUMNS.has(column)) entry[column] = cell.split(/[\s;]+/).filter((s) => s !== '');
    else if (column === 'metadata') {
      const metadata: Record<string, string> = {};
      for (const pair of cell.split(';')) {
        if (pair.trim() === '') continue;
        const eq = pair.indexOf('=');
        if (eq <= 0) return { problem: `(metadata): expected name=value pairs separated by ";"` };
        metadata[pair.slice(0, eq).trim()] = pair.slice(eq + 1).trim();
      }
      entry.metadata = metadata;
    } else entry[column] = cell;
  }
  return { entry };
}

/** CSV records of the file, from the header row on, as entries. */
async function* csvItems(chunks: AsyncIterable<Line[]>): AsyncGenerator<FileItem[]> {
  let columns: string[] | null = null;
  let pending: { line: number; text: string } | null = null;
  for await (const lines of chunks) {
    const out: FileItem[] = [];
    for (const { line, text } of lines) {
      if (pending === null && (text.trim() === '' || text.trimStart().startsWith('#'))) continue;
      const record: { line: number; text: string } = pending ? { line: pending.line, text: `${pending.text}\n${text}` } : { line, text };
      const cells = splitCsvRecord(record.text);
      if (cells === 'open') {
        pending = record;
        continue;
      }
      pending = null;
      if ('problem' in cells) {
        out.push({ line: record.line, problem: cells.problem });
        if (columns === null) {
          yield out;
          return;
        }
        continue;
      }
      if (columns === null) {
        columns = cells.map((c) => c.trim().toLowerCase());
        const unknown = columns.filter((c) => !(CSV_COLUMNS as readonly string[]).includes(c));
        const repeated = columns.filter((c, i) => columns!.indexOf(c) !== i);
        const problems: string[] = [];
        if (unknown.length > 0) problems.push(`unknown column${unknown.length > 1 ? 's' : ''} ${unknown.map((c) => `"${c}"`).join(', ')} (known: ${CSV_COLUMNS.join(', ')})`);
        if (repeated.length > 0) problems.push(`column "${repeated[0]}" appears twice`);
        for (const required of ['owner', 'plan']) if (!columns.includes(required)) problems.push(`no "${required}" column`);
        if (!columns.includes('key') && !columns.includes('digest')) problems.push('no "key" or "digest" column');
        if (problems.length > 0) {
          out.push({ line: record.line, problem: `header row: ${problems.join('; ')}` });
          yield out;
          return;
        }
        continue;
      }
      if (cells.length !== columns.length) {
        out.push({ line: record.line, problem: `${cells.length} field${cells.length === 1 ? '' : 's'}, but the header row has ${columns.length}` });
        continue;
      }
      const row = csvRowToEntry(columns, cells);
      out.push('problem' in row ? { line: record.line, problem: row.problem } : { line: record.line, entry: row.entry });
    }
    if (out.length > 0) yield out;
  }
  if (pending) yield [{ line: pending.line, problem: 'a quoted field is never closed' }];
}

/** Parses one JSON entry that starts at `line`, `column` of the file (both 1-based). */
function parseJsonItem(text: string, line: number, column = 1): FileItem {
  try {
    return { line, entry: JSON.parse(text) };
  } catch (err) {
    // Never quote the text: it may hold a secret.
    const position = jsonErrorPosition(err);
    if (position === null) return { line, problem: 'not valid JSON' };
    const before = text.slice(0, position);
    const newlines = before.split('\n').length - 1;
    const errorColumn = newlines === 0 ? column + position : position - before.lastIndexOf('\n');
    return { line: line + newlines, problem: `not valid JSON (column ${errorColumn})` };
  }
}

/**
 * JSON lines, or one JSON array streamed element by element: a small scanner follows strings and
 * brackets so that each top-level element is parsed on its own, with the line it starts on.
 */
async function* jsonItems(chunks: AsyncIterable<Line[]>): AsyncGenerator<FileItem[]> {
  let mode: 'unknown' | 'lines' | 'array' = 'unknown';
  let arrayState: 'before' | 'open' | 'closed' = 'before';
  let element = '';
  let elementLine = 0;
  let elementColumn = 1;
  let depth = 0;
  let inString = false;
  let escaped = false;
  let afterComma = false;
  let lastLine = 0;
  for await (const lines of chunks) {
    const out: FileItem[] = [];
    for (const { line, text } of lines) {
      lastLine = line;
      if (mode === 'unknown') {
        const first = text.trimStart()[0];
        if (first === undefined) continue;
        mode = first === '[' ? 'array' : 'lines';
      }
      if (mode === 'lines') {
        if (text.trim() !== '') out.push(parseJsonItem(text, line));
        continue;
      }
      let column = 0;
      for (const ch of `${text}\n`) {
        column++;
        if (arrayState !== 'open') {
          if (/\s/.test(ch)) continue;
          if (arrayState === 'before' && ch === '[') {
            arrayState = 'open';
            continue;
          }
          out.push({ line, problem: 'text after the end of the JSON array' });
          yield out;
          return;
        }
        if (inString) {
          element += ch;
          if (escaped) escaped = false;
          else if (ch === '\\') escaped = true;
          else if (ch === '"') inString = false;
          continue;
        }
        if (depth === 0 && (ch === ',' || ch === ']')) {
          const trimmed = element.trim();
          if (trimmed !== '') out.push(parseJsonItem(trimmed, elementLine, elementColumn));
          else if (ch === ',') out.push({ line, problem: 'an empty element in the JSON array' });
          else if (afterComma) out.push({ line, problem: 'a comma before the closing ]' });
          element = '';
          afterComma = ch === ',';
          if (ch === ']') arrayState = 'closed';
          continue;
        }
        if (element.trim() === '' && !/\s/.test(ch)) {
          elementLine = line;
          elementColumn = column;
        }
        element += ch;
        if (ch === '"') inString = true;
        else if (ch === '{' || ch === '[') depth++;
        else if (ch === '}' || ch === ']') depth--;
      }
    }
    if (out.length > 0) yield out;
  }
  if (mode === 'array' && arrayState !== 'closed') yield [{ line: lastLine, problem: 'the JSON array is not closed with ]' }];
}

/**
 * Cuts text read in pieces into lines the way readline (crlfDelay: Infinity) does: at \r\n, \n
 * or a lone \r, also when a \r\n is split between two pieces; a last line without a break counts.
 */
export class LineSplitter {
  private rest = '';

  /** The lines completed by this piece of text. */
  push(piece: string): string[] {
    let text = this.rest + piece;
    // A \r at the end may be the first half of a \r\n: decide with the next piece.
    const heldCR = text.endsWith('\r');
    if (heldCR) text = text.slice(0, -1);
    const lines = text.split(/\r\n|\n|\r/);
    this.rest = lines.pop()! + (heldCR ? '\r' : '');
    return lines;
  }

  /** The last line, when the text does not end with a line break. */
  end(): string[] {
    const last = this.rest.endsWith('\r') ? this.rest.slice(0, -1) : this.rest;
    this.rest = '';
    return last === '' ? [] : [last];
  }
}

/**
 * The lines of a file, a chunk of lines at a time (one array per read of up to 64 KiB: far fewer
 * awaits than one per line). A byte-order mark before the first line is dropped.
 */
async function* fileLines(file: string): AsyncGenerator<Line[]> {
  // 64 KiB reads: ~1000 lines a chunk, about a batch. Much larger chunks keep thousands of parsed
  // lines alive across the store calls, which made every young-generation GC copy them.
  const input = createReadStream(file, { encoding: 'utf8', highWaterMark: 64 * 1024 });
  const splitter = new LineSplitter();
  let line = 0;
  const numbered = (texts: string[]): Line[] =>
    texts.map((text) => {
      line++;
      return { line, text: line === 1 ? text.replace(/^\uFEFF/, '') : text };
    });
  try {
    for await (const piece of input as AsyncIterable<string>) {
      const texts = splitter.push(piece);
      if (texts.length > 0) yield numbered(texts);
    }
    const last = splitter.end();
    if (last.length > 0) yield numbered(last);
  } finally {
    input.destroy();
  }
}

/** The items of an import file in order, a chunk at a time; the format decides how lines become entries. */
async function* fileItems(file: string, format: ImportFormat | undefined): AsyncGenerator<FileItem[]> {
  let chosen = format ?? formatFromName(file);
  if (chosen === undefined) {
    find: for await (const lines of fileLines(file)) {
      for (const { text } of lines) {
        const first = text.trimStart()[0];
        if (first === undefined) continue;
        chosen = first === '[' || first === '{' ? 'json' : 'csv';
        break find;
      }
    }
  }
  yield* chosen === 'csv' ? csvItems(fileLines(file)) : jsonItems(fileLines(file));
}

async function fileVersion(file: string): Promise<string> {
  const s = await stat(file);
  if (!s.isFile()) throw new ImportFileError(`${file} is not a file`);
  return `${s.size}:${s.mtimeMs}`;
}

/** Batch calls kept in flight while the next batches are read and parsed. */
const IN_FLIGHT_BATCHES = 4;

/**
 * Checks a whole import file, then (unless dryRun) writes its keys. Throws SeedError when any line
 * is bad (nothing written), or an Error when the file cannot be read.
 *
 * Store traffic is batched: per batch of `batchSize` keys, the check pass makes two batch reads
 * (digestOwners, getKeys); the write pass one (getKeys), then upsertKeys for the new keys (two
 * reads, one pipelined write, no invalidation message: no cache holds a new key) and updateKeys
 * for changed stored keys (one pipelined write, one message naming them). Up to
 * IN_FLIGHT_BATCHES batches are in flight while the file is read on.
 */
export async function importKeys(opts: KeyImportOptions): Promise<KeyImportResult> {
  const { store, file } = opts;
  const batchSize = opts.batchSize ?? 500;
  const every = opts.progressEvery ?? 10_000;
  const progress = opts.onProgress ?? (() => {});
  let version: string;
  try {
    version = await fileVersion(file);
  } catch (err) {
    throw new ImportFileError(`cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }

  // Pass 1: check every line; keep only fingerprints for duplicates and the plans used.
  const problems: string[] = [];
  let problemCount = 0;
  const report = (problem: string) => {
    problemCount++;
    if (problems.length < MAX_LISTED_PROBLEMS) problems.push(problem);
  };
  const duplicates = new DuplicateFinder();
  const planUse = new Map<string, { firstLine: number; lines: number }>();
  const outcomes: Record<WriteOutcome, number> = { created: 0, updated: 0, unchanged: 0 };
  let keys = 0;
  const checking = new InOrderWindow<{ lines: number[]; checks: StoreCheck[] }>(IN_FLIGHT_BATCHES, ({ lines, checks }) => {
    checks.forEach((check, i) => {
      if (check.conflict) report(`line ${lines[i]}: ${check.conflict}`);
      outcomes[check.outcome]++;
    });
  });
  let batch: EntryKey[] = [];
  let batchLines: number[] = [];
  const checkBatch = async () => {
    if (batch.length === 0) return;
    const entries = batch;
    const lines = batchLines;
    batch = [];
    batchLines = [];
    await checking.push(checkKeysAgainstStore(store, entries).then((checks) => ({ lines, checks })));
  };
  let itemsSeen = 0;
  for await (const items of fileItems(file, opts.format)) {
    for (const item of items) {
      if (++itemsSeen % every === 0) progress(`checked ${itemsSeen} entries, up to line ${item.line}`);
      if (item.problem !== undefined) {
        report(`line ${item.line}: ${item.problem}`);
        continue;
      }
      const parsed = parseKeyEntry(item.entry, lineLocation(item.line), opts);
      if (!parsed.key) {
        for (const p of parsed.problems) report(p);
        continue;
      }
      keys++;
      const { record, digest } = parsed.key;
      const sameSecret = duplicates.secret(digest, item.line);
      if (sameSecret !== 0) report(`line ${item.line}: the same secret as line ${sameSecret}`);
      else {
        const sameId = duplicates.id(record.id, item.line);
        if (sameId !== 0) report(`line ${item.line}: id "${record.id}" is already used by line ${sameId}`);
      }
      const use = planUse.get(record.plan);
      if (use) use.lines++;
      else planUse.set(record.plan, { firstLine: item.line, lines: 1 });
      batch.push(parsed.key);
      batchLines.push(item.line);
      if (batch.length >= batchSize) await checkBatch();
    }
  }
  await checkBatch();
  await checking.drain();
  const plans = [...planUse];
  const stored = await mapInBatches(plans, batchSize, ([plan]) => store.getPlan(plan));
  plans.forEach(([plan, use], i) => {
    if (stored[i] !== null) return;
    const others = use.lines > 1 ? ` (and ${use.lines - 1} more line${use.lines > 2 ? 's' : ''} with this plan)` : '';
    report(`line ${use.firstLine}: plan "${plan}" does not exist; create it first with keygate-admin plan set${others}`);
  });
  if (problemCount > 0) {
    const lineOf = (p: string) => Number(/^line (\d+)/.exec(p)?.[1] ?? 0);
    problems.sort((a, b) => lineOf(a) - lineOf(b));
    if (problemCount > problems.length) problems.push(`... and ${problemCount - problems.length} more problems`);
    throw new SeedError(problems, file);
  }
  if (opts.dryRun) return { keys, ...outcomes, dryRun: true };

  // Pass 2: the file checked out; write it, batch by batch.
  if ((await fileVersion(file)) !== version) throw new ImportFileError(`${file} changed while it was being checked; nothing written, run the import again`);
  const written: Record<WriteOutcome, number> = { created: 0, updated: 0, unchanged: 0 };
  let done = 0;
  const writing = new InOrderWindow<WriteOutcome[]>(IN_FLIGHT_BATCHES, (results) => {
    for (const outcome of results) written[outcome]++;
    const before = done;
    done += results.length;
    if (Math.floor(done / every) > Math.floor(before / every)) progress(`wrote ${done} of ${keys} keys`);
  });
  let pending: EntryKey[] = [];
  const writeBatch = async () => {
    if (pending.length === 0) return;
    const entries = pending;
    pending = [];
    await writing.push(writeKeys(store, entries));
  };
  for await (const items of fileItems(file, opts.format)) {
    for (const item of items) {
      const parsed = item.problem === undefined ? parseKeyEntry(item.entry, lineLocation(item.line), opts) : null;
      if (!parsed?.key) {
        await writing.drain();
        throw new ImportFileError(`${file} changed during the import: line ${item.line} is no longer valid; ${done} keys were written before it`);
      }
      pending.push(parsed.key);
      if (pending.length >= batchSize) await writeBatch();
    }
  }
  await writeBatch();
  await writing.drain();
  return { keys, ...written, dryRun: false };
}
