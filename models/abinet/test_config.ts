/** Test-only: a very small abinet_vision config (16×32 images, 3-level key UNet, T = 6) that trains in seconds. */
export const TEST_MICRO_CONFIG = {
  image_height: 16,
  image_width: 32,
  stem_channels: 4,
  stage_channels: [4, 8, 8, 16, 16],
  stage_blocks: [1, 1, 1, 1, 1],
  nhead: 2,
  ffn: 32,
  num_layers: 1,
  attention_channels: 8,
  attention_strides: [[1, 2], [2, 2], [2, 2]],
  max_length: 5,
};
