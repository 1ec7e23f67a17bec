import { createCanvas, GlobalFonts } from "@napi-rs/canvas";
const a = GlobalFonts.registerFromPath("node_modules/@fontsource/roboto/files/roboto-latin-700-italic.woff2", "t-woff2");
const b = GlobalFonts.registerFromPath("node_modules/@fontsource/lobster/files/lobster-latin-400-normal.woff", "t-woff");
const c = GlobalFonts.registerFromPath("node_modules/dejavu-fonts-ttf/ttf/DejaVuSerif-Bold.ttf", "t-ttf");
console.log(!!a, !!b, !!c);
const cv = createCanvas(300, 120); const ctx = cv.getContext("2d");
ctx.fillStyle = "white"; ctx.fillRect(0, 0, 300, 120); ctx.fillStyle = "black";
for (const [i, f] of ["t-woff2", "t-woff", "t-ttf"].entries()) { ctx.font = `30px "${f}"`; ctx.fillText("Hello 123", 5, 35 + i * 38); console.log(f, ctx.measureText("Hello 123").width); }
Deno.writeFileSync("/tmp/strata_scratch/fonts.png", cv.encodeSync("png"));
let t = performance.now();
const n = 2000;
for (let i = 0; i < n; i++) { const c2 = createCanvas(120, 32); const x = c2.getContext("2d"); x.fillStyle="#eee"; x.fillRect(0,0,120,32); x.font = `22px "t-ttf"`; x.fillStyle="#123"; x.fillText("word" + i, 4, 24); c2.encodeSync("jpeg", 85); }
console.log("simple render+jpeg /s", (n / (performance.now() - t) * 1000).toFixed(0));
t = performance.now();
for (let i = 0; i < n; i++) { const c2 = createCanvas(120, 32); const x = c2.getContext("2d"); x.fillStyle="#eee"; x.fillRect(0,0,120,32); x.font = `22px "t-ttf"`; x.fillStyle="#123"; x.fillText("word" + i, 4, 24); const d = x.getImageData(0,0,120,32); x.putImageData(d,0,0); c2.encodeSync("jpeg", 85); }
console.log("with get/put imagedata /s", (n / (performance.now() - t) * 1000).toFixed(0));
t = performance.now();
for (let i = 0; i < n; i++) { const c2 = createCanvas(120, 32); const x = c2.getContext("2d"); x.fillStyle="#eee"; x.fillRect(0,0,120,32); x.font = `22px "t-ttf"`; x.fillStyle="#123"; x.filter = "blur(1px)"; x.fillText("word" + i, 4, 24); c2.encodeSync("jpeg", 85); }
console.log("with filter blur /s", (n / (performance.now() - t) * 1000).toFixed(0));
