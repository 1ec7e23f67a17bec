/**
 * The sinusoidal positional-encoding table of ABINet's `PositionalEncoding(d_model, max_len)`:
 * `pe[p, 2i] = sin(p·w_i)`, `pe[p, 2i+1] = cos(p·w_i)`, `w_i = exp(2i · (−ln 10000 / d_model))`.
 *
 * The values follow PyTorch's float32 evaluation order (each intermediate rounded to float32), so the
 * table matches the official buffer to within float32 rounding of sin/cos. Models keep it as a buffer
 * named `…pos_encoder.pe` with PyTorch's shape `[max_len, 1, d_model]`, so a loaded checkpoint's table
 * is used as is.
 */

export function sinusoidalTable(maxLen: number, dModel: number): Float32Array {
  const f = Math.fround;
  const out = new Float32Array(maxLen * dModel);
  const factor = f(-Math.log(10000) / dModel);
  for (let i = 0; 2 * i < dModel; i++) {
    const w = f(Math.exp(f(2 * i * factor)));
    for (let p = 0; p < maxLen; p++) {
      const angle = f(p * w);
      out[p * dModel + 2 * i] = Math.sin(angle);
      if (2 * i + 1 < dModel) out[p * dModel + 2 * i + 1] = Math.cos(angle);
    }
  }
  return out;
}
