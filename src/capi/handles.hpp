#pragma once
// The opaque C handles: each wraps the C++ object it stands for.

#include <memory>

#include "common/image.hpp"

struct mv_image {
  std::unique_ptr<medvision::Image> image;
};
