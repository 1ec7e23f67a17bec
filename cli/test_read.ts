/** For the `read` tests: one output line, `<image>: <text> (<confidence>)`, the confidence as formatConfidence
 * prints it (4 decimals, or `<0.0001`). Groups: image, text, confidence. */
export const READ_LINE = /^(.+): ([a-z0-9]*) \((<0\.0001|[01]\.\d{4})\)$/;
