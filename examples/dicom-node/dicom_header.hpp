// Reads the few header attributes the node routes on, with DCMTK (no pixel data, no PHI).
#pragma once

#include <filesystem>
#include <string>

class DcmItem;

namespace mvnode {

struct Header {
  std::string study_uid;
  std::string series_uid;
  std::string sop_uid;
  std::string sop_class;
  std::string modality;
  std::string body_part;
  std::string series_description;
  std::string manufacturer;
  long instance_number = 0;
};

/** From a dataset in memory. */
Header read_header(DcmItem& dataset);
/** From a file; throws std::runtime_error naming the file when it is not DICOM. */
Header read_header(const std::filesystem::path& file);

}  // namespace mvnode
