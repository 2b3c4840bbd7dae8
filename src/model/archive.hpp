#pragma once
// Model packages as one archive file: a tar file (optionally gzip-compressed: .tar.gz, .tgz,
// .mvpkg) holding manifest.json and the model file, at its top level or in one folder. It is
// extracted into a private temporary folder that lives as long as the loaded model.

#include <memory>
#include <string>
#include <vector>

namespace medvision::model {

class ExtractedPackage {
 public:
  // Extracts `archive`. Throws medvision::Error: MV_ERR_IO (unreadable, disk full),
  // MV_ERR_CORRUPT_DATA (not a tar file, bad header checksum, truncated),
  // MV_ERR_UNSUPPORTED_FORMAT (links, devices, or names leaving the package), MV_ERR_MODEL (no
  // manifest.json inside). Messages name the archive and the entry.
  static std::shared_ptr<const ExtractedPackage> extract(const std::string& archive);
  ~ExtractedPackage();
  ExtractedPackage(const ExtractedPackage&) = delete;
  ExtractedPackage& operator=(const ExtractedPackage&) = delete;

  const std::string& archive() const { return archive_; }
  const std::string& root() const { return root_; }        // the temporary folder
  const std::string& package() const { return package_; }  // the folder holding manifest.json

 private:
  ExtractedPackage() = default;
  std::string archive_, root_, package_;
};

// True when `path` names a regular file whose name ends in .tar, .tar.gz, .tgz or .mvpkg.
bool is_package_archive(const std::string& path);

// `file_name` without its archive suffix (.tar, .tar.gz, .tgz, .mvpkg), or "" when it has none:
// the package name an archive stands for on the search path.
std::string archive_stem(const std::string& file_name);

// The archive names a package `name` may have in a search-path folder, in the order looked up.
std::vector<std::string> archive_names(const std::string& name);

}  // namespace medvision::model
