#pragma once
// Passes over the graph torch::jit::optimize_for_inference makes, with medvision's operators on
// oneDNN's blocked layout: InstanceNorm + LeakyReLU as one operator (issue 17, 3D U-Nets), and
// LibTorch 1.13's in-place activations on oneDNN tensors replaced by a correct one. Included by
// runtime.cpp only (it names LibTorch's graph type).
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

// LibTorch 1.13's in-place activations on oneDNN tensors (prim::MKLDNNHardTanh_ for ReLU6 and
// hardtanh, MKLDNNClamp_, MKLDNNHardSwish_, MKLDNNHardSigmoid_) skip the activation when the
// channels do not fill oneDNN's last channel block (with AVX-512: any count not a multiple of 16),
// a silent wrong answer (MobileNetV3 logits 0.90 instead of 1.01). Replaces each with
// medvision::mkldnn_elementwise_; returns how many. Throws c10::Error if it cannot (the caller
// then runs the frozen module).
int repair_mkldnn_activations(const std::shared_ptr<torch::jit::Graph>& graph);

}  // namespace medvision::infer
