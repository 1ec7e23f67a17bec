import assert from "node:assert/strict";
import { join } from "node:path";
import { el, escapeXml, lineChart, niceTicks, render, tickLabel } from "./svg.ts";

/** A minimal well-formedness check: every opened tag is closed in order, attributes are quoted. */
function assertWellFormed(xml: string): void {
  const body = xml.replace(/^<\?xml[^>]*\?>\s*/, "");
  const stack: string[] = [];
  for (const m of body.matchAll(/<(\/?)([A-Za-z][\w:-]*)((?:\s+[\w:-]+="[^"<]*")*)\s*(\/?)>/g)) {
    const [, close, name, , self] = m;
    if (self) continue;
    if (close) assert.equal(stack.pop(), name, `unbalanced </${name}>`);
    else stack.push(name);
  }
  assert.deepEqual(stack, []);
  // No stray '<' or '&' outside tags and entities.
  const text = body.replace(/<[^>]*>/g, "");
  assert.ok(!/[<>]/.test(text), "stray angle bracket in text");
  assert.ok(!/&(?!(amp|lt|gt|quot|#39);)/.test(text), "unescaped ampersand");
}

Deno.test("niceTicks covers the range with round steps", () => {
  assert.deepEqual(niceTicks(0, 1, 5).ticks, [0, 0.2, 0.4, 0.6, 0.8, 1]);
  const t = niceTicks(3, 597, 6);
  assert.equal(t.min, 0);
  assert.ok(t.max >= 597);
  assert.deepEqual(t.ticks.slice(0, 3), [0, 100, 200]);
  const flat = niceTicks(2.3, 2.3);
  assert.ok(flat.min < 2.3 && flat.max > 2.3);
  assert.deepEqual(niceTicks(NaN, 1).ticks, [0, 1]);
  assert.equal(tickLabel(0.25, 0.05), "0.25");
  assert.equal(tickLabel(0.4, 0.2), "0.4");
  assert.equal(tickLabel(20000, 5000), "20k");
  assert.equal(tickLabel(300, 100), "300");
});

Deno.test("render escapes attributes and text", () => {
  assert.equal(escapeXml(`a<b & "c"`), "a&lt;b &amp; &quot;c&quot;");
  assert.equal(
    render(el("text", { x: 1.23456, "data-x": `"q"` }, ["<&>"])),
    `<text x="1.23" data-x="&quot;q&quot;">&lt;&amp;&gt;</text>`,
  );
});

const chart = () =>
  lineChart({
    title: "Training loss",
    xLabel: "step",
    yLabel: "loss",
    series: [
      {
        label: "ABINet-Vision seed=1",
        points: Array.from({ length: 60 }, (_, i) => [i * 10, 3 * Math.exp(-i / 15) + 0.2] as const),
      },
      {
        label: "ConCLR-Vision <seed=1> & co",
        points: Array.from({ length: 60 }, (_, i) => [i * 10, 3.5 * Math.exp(-i / 12) + 0.3] as const),
        dash: "6 3",
      },
      { label: "gap", points: [[0, 1], [10, NaN], [20, 0.5], [30, 0.4]] },
    ],
  });

Deno.test("lineChart: well-formed SVG with title, axes, one path per series and a legend", () => {
  const svg = chart();
  assertWellFormed(svg);
  assert.match(svg, /<svg xmlns="http:\/\/www.w3.org\/2000\/svg" width="720" height="420"/);
  assert.match(svg, /<title>Training loss<\/title>/);
  assert.equal([...svg.matchAll(/<path /g)].length, 3);
  assert.match(svg, />ConCLR-Vision &lt;seed=1&gt; &amp; co</);
  assert.match(svg, />step</);
  assert.match(svg, />loss</);
  // A NaN breaks the line into two sub-paths.
  const gap = svg.match(/data-series="gap">\s*<path d="([^"]+)"/)!;
  assert.equal((gap[1].match(/M/g) ?? []).length, 2);
  // Deterministic.
  assert.equal(svg, chart());
});

Deno.test("lineChart without data says so", () => {
  const svg = lineChart({
    title: "Validation accuracy",
    xLabel: "step",
    yLabel: "accuracy",
    series: [],
    emptyText: "no validation",
  });
  assertWellFormed(svg);
  assert.match(svg, /no validation/);
});

/** Renders an SVG with headless Chromium; the caller skips when it is absent. */
export async function chromium(): Promise<string | undefined> {
  for (const name of ["chromium", "chromium-browser", "google-chrome"]) {
    try {
      const { success } = await new Deno.Command("which", { args: [name], stdout: "null", stderr: "null" }).output();
      if (success) return name;
    } catch {
      // `which` itself missing: no browser either.
    }
  }
  return undefined;
}

/** Screenshot of `file` rendered by headless Chromium, as PNG bytes. */
export async function screenshot(browser: string, file: string, dir: string, size = "800,500"): Promise<Uint8Array> {
  const out = join(dir, "shot.png");
  const cmd = new Deno.Command(browser, {
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--hide-scrollbars",
      `--user-data-dir=${join(dir, "profile")}`,
      `--screenshot=${out}`,
      `--window-size=${size}`,
      `file://${file}`,
    ],
    stdout: "piped",
    stderr: "piped",
  });
  const { code, stderr } = await cmd.output();
  if (code !== 0) throw new Error(`chromium failed (${code}): ${new TextDecoder().decode(stderr).slice(-2000)}`);
  return await Deno.readFile(out);
}

/** Per-channel variance of the decoded PNG's pixels (0 for a blank image). */
export async function pixelStats(
  png: Uint8Array,
): Promise<{ width: number; height: number; variance: number; dark: number }> {
  const { createCanvas, loadImage } = await import("@napi-rs/canvas");
  const img = await loadImage(png);
  const canvas = createCanvas(img.width, img.height);
  const ctx = canvas.getContext("2d");
  ctx.drawImage(img, 0, 0);
  const data = ctx.getImageData(0, 0, img.width, img.height).data;
  let sum = 0;
  let sq = 0;
  let dark = 0;
  const n = data.length / 4;
  for (let i = 0; i < data.length; i += 4) {
    const v = (data[i] + data[i + 1] + data[i + 2]) / 3;
    sum += v;
    sq += v * v;
    if (v < 128) dark++;
  }
  const m = sum / n;
  return { width: img.width, height: img.height, variance: sq / n - m * m, dark: dark / n };
}

const browser = await chromium();
Deno.test({
  name: `lineChart renders in headless Chromium to a non-blank PNG${
    browser ? "" : " (SKIPPED: no chromium; apt-get install chromium)"
  }`,
  ignore: !browser,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "strata-svg-" });
    try {
      const file = join(dir, "loss.svg");
      await Deno.writeTextFile(file, chart());
      const png = await screenshot(browser!, file, dir);
      const keep = Deno.env.get("STRATA_KEEP_PNG");
      if (keep) await Deno.writeFile(keep, png);
      const s = await pixelStats(png);
      assert.equal(s.width, 800);
      assert.ok(s.variance > 100, `the rendered chart looks blank (variance ${s.variance.toFixed(1)})`);
      // Lines, axes and text: some dark pixels, but mostly white background.
      assert.ok(s.dark > 0.002 && s.dark < 0.3, `dark pixel share ${s.dark}`);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
