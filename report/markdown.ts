/**
 * GitHub-flavoured Markdown building blocks for reports: escaped inline text,
 * tables with alignment, and a small reader of what was written (tables and
 * referenced files) so that tests can check the output is well formed.
 *
 * Plain strings are always escaped; Markdown that the caller builds on
 * purpose is wrapped with `raw`, `bold`, `code`, `link` or `image`.
 */

/** Trusted Markdown (already escaped). */
export interface Raw {
  readonly md: string;
}

/** A cell or inline fragment: plain text (escaped when rendered) or trusted Markdown. */
export type Inline = string | Raw;

export function raw(md: string): Raw {
  return { md };
}

const ALNUM = /[\p{L}\p{N}]/u;

/**
 * Escapes text so that it renders literally. Intraword underscores
 * (`abinet_vision`) are left as they are: they cannot start emphasis in GFM.
 */
export function escapeText(text: string): string {
  let out = "";
  const chars = [...text];
  for (let i = 0; i < chars.length; i++) {
    const c = chars[i];
    if (c === "_") {
      const before = chars[i - 1] ?? "";
      const after = chars[i + 1] ?? "";
      out += ALNUM.test(before) && ALNUM.test(after) ? "_" : "\\_";
    } else if (c === "\r") {
      continue;
    } else if (c === "\n") {
      out += "<br>";
    } else if ("\\`*[]<>|~#!&".includes(c)) {
      out += c === "&" ? "&amp;" : `\\${c}`;
    } else {
      out += c;
    }
  }
  return out;
}

export function inline(x: Inline): string {
  return typeof x === "string" ? escapeText(x) : x.md;
}

export function bold(x: Inline): Raw {
  const s = inline(x);
  return raw(s === "" ? "" : `**${s}**`);
}

export function italic(x: Inline): Raw {
  const s = inline(x);
  return raw(s === "" ? "" : `*${s}*`);
}

/** A code span; backticks inside are handled by a longer fence. Pipes are escaped when it is put in a table. */
export function code(text: string): Raw {
  const clean = text.replace(/\r?\n/g, " ");
  const longest = Math.max(0, ...[...clean.matchAll(/`+/g)].map((m) => m[0].length));
  const fence = "`".repeat(longest + 1);
  const pad = clean.startsWith("`") || clean.endsWith("`") ? " " : "";
  return raw(`${fence}${pad}${clean}${pad}${fence}`);
}

function escapeUrl(url: string): string {
  return url.replace(/[ ()<>]/g, (c) => encodeURIComponent(c));
}

export function link(text: Inline, url: string): Raw {
  return raw(`[${inline(text)}](${escapeUrl(url)})`);
}

export function image(alt: string, url: string): Raw {
  return raw(`![${escapeText(alt)}](${escapeUrl(url)})`);
}

export function heading(level: number, text: Inline): string {
  return `${"#".repeat(Math.min(6, Math.max(1, level)))} ${inline(text)}`;
}

export type Align = "left" | "right" | "center";

/** Escapes the pipes of a cell that are not already escaped (code spans included, as GFM requires). */
function cellText(x: Inline): string {
  const s = inline(x).replace(/\r?\n/g, "<br>");
  let out = "";
  for (let i = 0; i < s.length; i++) {
    if (s[i] === "\\" && i + 1 < s.length) {
      out += s[i] + s[i + 1];
      i++;
    } else if (s[i] === "|") {
      out += "\\|";
    } else {
      out += s[i];
    }
  }
  return out.trim();
}

/** Display width of a cell, for padding (code points; good enough for the ASCII and symbols reports use). */
function width(s: string): number {
  return [...s].length;
}

/**
 * A GFM table. Every row must have as many cells as the header (an error
 * otherwise, naming the row). Columns are padded so the source reads well.
 */
export function table(
  header: readonly Inline[],
  rows: readonly (readonly Inline[])[],
  align: readonly Align[] = [],
): string {
  if (header.length === 0) throw new Error("markdown table: the header has no columns");
  rows.forEach((row, i) => {
    if (row.length !== header.length) {
      throw new Error(`markdown table: row ${i + 1} has ${row.length} cells, the header has ${header.length}`);
    }
  });
  const head = header.map(cellText).map((h) => h === "" ? " " : h);
  const body = rows.map((r) => r.map(cellText));
  const widths = head.map((h, c) => Math.max(3, width(h), ...body.map((r) => width(r[c]))));
  const pad = (s: string, c: number) => {
    const fill = " ".repeat(widths[c] - width(s));
    return (align[c] ?? "left") === "right" ? fill + s : s + fill;
  };
  const line = (cells: string[]) => `| ${cells.map(pad).join(" | ")} |`;
  const rule = widths.map((w, c) => {
    const a = align[c] ?? "left";
    if (a === "right") return "-".repeat(w - 1) + ":";
    if (a === "center") return ":" + "-".repeat(w - 2) + ":";
    return "-".repeat(w);
  });
  return [line(head), `| ${rule.join(" | ")} |`, ...body.map(line)].join("\n");
}

/** A bullet list of inline items. */
export function bullets(items: readonly Inline[]): string {
  return items.map((i) => `- ${inline(i)}`).join("\n");
}

/** A collapsible block (HTML `<details>`, which GitHub renders); the body is Markdown. */
export function details(summary: string, body: string): string {
  return `<details>\n<summary>${escapeHtml(summary)}</summary>\n\n${body}\n\n</details>`;
}

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" })[c]!);
}

// ---------------------------------------------------------------------------
// Reading Markdown back (for tests and checks).

/** Splits a table row into cells the way GFM does: unescaped pipes separate cells, outer pipes are optional. */
export function splitRow(line: string): string[] {
  let s = line.trim();
  if (s.startsWith("|")) s = s.slice(1);
  const cells: string[] = [];
  let cur = "";
  for (let i = 0; i < s.length; i++) {
    if (s[i] === "\\" && i + 1 < s.length) {
      cur += s[i] + s[i + 1];
      i++;
    } else if (s[i] === "|") {
      cells.push(cur.trim());
      cur = "";
    } else {
      cur += s[i];
    }
  }
  if (cur.trim() !== "" || !s.endsWith("|")) cells.push(cur.trim());
  return cells;
}

const DELIMITER_CELL = /^:?-+:?$/;

export interface ParsedTable {
  /** 1-based line number of the header row. */
  readonly line: number;
  readonly header: string[];
  readonly align: Align[];
  readonly rows: string[][];
}

/**
 * Finds the GFM tables of a document (outside fenced code blocks): a header
 * row followed by a delimiter row with the same number of cells; the table
 * runs until a blank line or a line without a pipe.
 */
export function parseTables(markdown: string): ParsedTable[] {
  const lines = markdown.split(/\r?\n/);
  const tables: ParsedTable[] = [];
  let fenced = false;
  for (let i = 0; i < lines.length; i++) {
    if (/^\s*(```|~~~)/.test(lines[i])) {
      fenced = !fenced;
      continue;
    }
    if (fenced || i + 1 >= lines.length || !lines[i].includes("|")) continue;
    const delim = splitRow(lines[i + 1]);
    if (!delim.length || !delim.every((c) => DELIMITER_CELL.test(c))) continue;
    const header = splitRow(lines[i]);
    if (header.length !== delim.length) continue;
    const align = delim.map((c): Align =>
      c.startsWith(":") && c.endsWith(":") ? "center" : c.endsWith(":") ? "right" : "left"
    );
    const rows: string[][] = [];
    let j = i + 2;
    for (; j < lines.length && lines[j].trim() !== "" && lines[j].includes("|"); j++) rows.push(splitRow(lines[j]));
    tables.push({ line: i + 1, header, align, rows });
    i = j - 1;
  }
  return tables;
}

/** Problems with the tables of a document: rows whose cell count differs from the header's. */
export function tableProblems(markdown: string): string[] {
  const problems: string[] = [];
  for (const t of parseTables(markdown)) {
    t.rows.forEach((r, k) => {
      if (r.length !== t.header.length) {
        problems.push(`table at line ${t.line}: row ${k + 1} has ${r.length} cells, the header has ${t.header.length}`);
      }
    });
  }
  return problems;
}

/** Targets of links and images (`[x](target)`, `![x](target)`, `<img src="…">`) outside code. */
export function referencedTargets(markdown: string): string[] {
  const out: string[] = [];
  let fenced = false;
  for (const line of markdown.split(/\r?\n/)) {
    if (/^\s*(```|~~~)/.test(line)) {
      fenced = !fenced;
      continue;
    }
    if (fenced) continue;
    const noCode = line.replace(/(`+)[\s\S]*?\1/g, "");
    for (const m of noCode.matchAll(/(?<!\\)\]\(([^)\s]+)(?:\s+"[^"]*")?\)/g)) out.push(decodeURIComponent(m[1]));
    for (const m of noCode.matchAll(/<img\s[^>]*src="([^"]+)"/g)) out.push(m[1]);
  }
  return out;
}

/** Relative file targets (not URLs, not anchors), without any `#fragment`. */
export function referencedFiles(markdown: string): string[] {
  return referencedTargets(markdown)
    .filter((t) => !/^[a-z][a-z0-9+.-]*:/i.test(t) && !t.startsWith("#") && !t.startsWith("/"))
    .map((t) => t.replace(/#.*$/, ""));
}
