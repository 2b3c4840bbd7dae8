#pragma once
// InstanceNorm + LeakyReLU on oneDNN's blocked layout, as one operator (issue 17, 3D U-Nets).
// Included by runtime.cpp only (it names LibTorch's graph type).
//
// Why: torch::jit::optimize_for_inference keeps convolution outputs in oneDNN's blocked layout
// (nCdhw8c on AVX2), but LibTorch 1.13 has no oneDNN InstanceNorm, so each normalisation of a
// U-Net becomes to_dense (a reorder), instance_norm (statistics, then a normalising pass),
// leaky_relu_ (a third pass) and to_mkldnn (a reorder back): four or five passes over a tensor of
// up to 113 MiB per 96^3 window. Measured in Python on the bundled brain-tumour package, these
// took ~40 % of a window's time, more than the convolutions themselves.
//
// What: a pass over the optimised graph that replaces each
//   to_dense(x) -> instance_norm(no running stats) -> leaky_relu[_] [-> to_mkldnn]
// where x is a oneDNN tensor used nowhere else by medvision::instance_norm_leaky_relu_mkldnn,
// which reads x where it lies: one pass for the statistics and one that normalises, applies the
// slope and writes either back into x (when the result feeds another convolution) or into
// oneDNN's dense copy of x (when it feeds pooling, concatenation or the transposed convolution).
// Layouts the kernel does not know (anything but channel-blocked by 8 or 16, or plain) take
// LibTorch's own operators, so the result is the same either way.

#include <memory>

namespace torch::jit {
struct Graph;
}

namespace medvision::infer {

// Rewrites the graph in place; returns how many InstanceNorm + LeakyReLU pairs it fused.
int fuse_instance_norm_leaky_relu(const std::shared_ptr<torch::jit::Graph>& graph);

}  // namespace medvision::infer
