// The kernel library: every export is a plain function over pointers into this module's memory
// and shapes. The TypeScript side owns the memory layout (see src/engine.ts).
export { conv2d_windows_forward, conv2d_windows_backward_input, conv2d_windows_backward_filter, conv2d_windows_work, to_planar, pack_filter, conv2d_planar, conv2d_filter_planar } from './conv';
export { depthwise_pack_filter, depthwise_forward, depthwise_backward_input, depthwise_backward_filter, expand_channels, sum_channel_groups } from './depthwise';
export { maxpool_forward, maxpool_backward, avgpool_forward, avgpool_backward } from './pool';
export { dense_forward, dense_backward_input, dense_backward_weights, pack_panels, panels_size, matmul_work } from './dense';
export { add, axpy, fill, dot, relu_backward, activation_forward, activation_backward, sum_rows, sum_planes, adam, clamp, copy_block, add_block, affine_forward, affine_backward } from './elementwise';
export { log_softmax_forward, log_softmax_backward } from './softmax';
export { dlr_forward, dlr_backward } from './dlr';
export { peak_madd, peak_stream } from './peak';

/** First byte of memory free for tensors. */
export function heap_base(): usize {
  return (__heap_base + 15) & ~15;
}
