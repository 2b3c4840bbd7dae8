#include "model/archive.hpp"

#include <stdlib.h>
#include <zlib.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <vector>

#include "common/error.hpp"

namespace medvision::model {

namespace fs = std::filesystem;

namespace {

constexpr uint64_t kMaxTotal = uint64_t{16} << 30;    // 16 GiB extracted at most
constexpr uint64_t kMaxMetadata = uint64_t{1} << 20;  // a long name or pax header: 1 MiB at most
constexpr uint64_t kChunk = uint64_t{1} << 20;        // entry data is copied 1 MiB at a time
constexpr size_t kBlock = 512;

bool ends_with(const std::string& s, const char* suffix) {
  const size_t n = std::strlen(suffix);
  return s.size() >= n && s.compare(s.size() - n, n, suffix) == 0;
}

// Octal (or GNU base-256) numeric header field.
uint64_t number(const char* p, size_t n, bool* ok) {
  if (n > 0 && (static_cast<unsigned char>(p[0]) & 0x80)) {  // base-256
    uint64_t v = static_cast<unsigned char>(p[0]) & 0x7F;
    for (size_t i = 1; i < n; ++i) v = (v << 8) | static_cast<unsigned char>(p[i]);
    return v;
  }
  uint64_t v = 0;
  size_t i = 0;
  while (i < n && (p[i] == ' ' || p[i] == '\0')) ++i;
  for (; i < n && p[i] >= '0' && p[i] <= '7'; ++i) v = v * 8 + static_cast<uint64_t>(p[i] - '0');
  for (; i < n; ++i) {
    if (p[i] != ' ' && p[i] != '\0') *ok = false;
  }
  return v;
}

std::string field(const char* p, size_t n) { return std::string(p, strnlen(p, n)); }

class Reader {
 public:
  explicit Reader(const std::string& path) : path_(path) {
    f_ = gzopen(path.c_str(), "rb");  // reads plain files as they are, gzip ones decompressed
    if (f_ == nullptr) throw Error(MV_ERR_IO, path + ": cannot open the package archive");
  }
  ~Reader() {
    if (f_ != nullptr) gzclose(f_);
  }
  Reader(const Reader&) = delete;
  Reader& operator=(const Reader&) = delete;
  // Reads exactly n bytes; false at a clean end of file before any byte.
  bool read(char* buf, size_t n, const std::string& what) {
    size_t got = 0;
    while (got < n) {
      const int r =
          gzread(f_, buf + got, static_cast<unsigned>(std::min<size_t>(n - got, 1u << 20)));
      if (r < 0) throw Error(MV_ERR_CORRUPT_DATA, path_ + ": " + what + ": corrupt gzip data");
      if (r == 0) {
        if (got == 0) return false;
        throw Error(MV_ERR_CORRUPT_DATA, path_ + ": " + what + ": the archive is truncated");
      }
      got += static_cast<size_t>(r);
    }
    return true;
  }

 private:
  std::string path_;
  gzFile f_ = nullptr;
};

// A relative path inside the package: no absolute names, no "..", "./" prefixes dropped.
fs::path safe_name(const std::string& archive, const std::string& name) {
  fs::path p = fs::path(name).lexically_normal();
  if (name.empty() || p.is_absolute() || p.has_root_name()) {
    throw Error(MV_ERR_UNSUPPORTED_FORMAT, archive + ": entry '" + name + "' has an absolute name");
  }
  for (const auto& part : p) {
    if (part == "..") {
      throw Error(MV_ERR_UNSUPPORTED_FORMAT,
                  archive + ": entry '" + name + "' would leave the package folder");
    }
  }
  return p;
}

}  // namespace

std::string archive_stem(const std::string& file_name) {
  // Longest first, so that "x.tar.gz" is "x" rather than "x.tar".
  for (const char* ext : {".tar.gz", ".mvpkg", ".tgz", ".tar"}) {
    const size_t n = std::strlen(ext);
    if (file_name.size() > n && ends_with(file_name, ext))
      return file_name.substr(0, file_name.size() - n);
  }
  return {};
}

std::vector<std::string> archive_names(const std::string& name) {
  return {name + ".mvpkg", name + ".tar.gz"};
}

bool is_package_archive(const std::string& path) {
  std::error_code ec;
  return !archive_stem(fs::path(path).filename().string()).empty() && fs::is_regular_file(path, ec);
}

namespace {

// The "path" record of a pax extended header ("<len> path=<name>\n" records), or "".
std::string pax_path(const std::string& text) {
  std::string path;
  for (size_t pos = 0; pos < text.size();) {
    const size_t sp = text.find(' ', pos);
    if (sp == std::string::npos) break;
    const size_t len = static_cast<size_t>(std::strtoull(text.c_str() + pos, nullptr, 10));
    if (len == 0 || pos + len > text.size() || sp + 1 >= pos + len) break;
    const std::string rec = text.substr(sp + 1, pos + len - sp - 2);
    if (rec.rfind("path=", 0) == 0) path = rec.substr(5);
    pos += len;
  }
  return path;
}

// Copies one entry's data (padded to whole blocks) in chunks of at most kChunk bytes, writing its
// first `size` bytes to `out` (or dropping them): memory stays bounded whatever size the header
// declares, and a declared size past the end of the data is "truncated", found while reading.
void copy_entry(Reader& in, std::ofstream* out, uint64_t padded, uint64_t size,
                std::vector<char>& buf, const std::string& archive, const std::string& what,
                const std::string& entry_what) {
  buf.resize(static_cast<size_t>(std::min<uint64_t>(padded, kChunk)));
  for (uint64_t done = 0; done < padded;) {
    const size_t n = static_cast<size_t>(std::min<uint64_t>(padded - done, kChunk));
    if (!in.read(buf.data(), n, entry_what)) {
      throw Error(MV_ERR_CORRUPT_DATA, archive + ": " + what + ": the archive is truncated");
    }
    if (out != nullptr && done < size) {
      out->write(buf.data(), static_cast<std::streamsize>(std::min<uint64_t>(size - done, n)));
      if (!*out)
        throw Error(MV_ERR_IO, archive + ": cannot extract " + entry_what + " (disk full?)");
    }
    done += n;
  }
}

}  // namespace

std::shared_ptr<const ExtractedPackage> ExtractedPackage::extract(const std::string& archive) {
  std::shared_ptr<ExtractedPackage> out(new ExtractedPackage());
  out->archive_ = archive;
  std::string tmpl = (fs::temp_directory_path() / "medvision-package-XXXXXX").string();
  std::vector<char> buf(tmpl.begin(), tmpl.end());
  buf.push_back('\0');
  if (mkdtemp(buf.data()) == nullptr) {
    throw Error(MV_ERR_IO, archive + ": cannot create a temporary folder to extract it into");
  }
  out->root_ = buf.data();  // removed by the destructor from here on

  Reader in(archive);
  std::array<char, kBlock> h{};
  std::string long_name;
  uint64_t total = 0;
  bool any = false;
  std::vector<char> data;
  for (int entry = 0;; ++entry) {
    const std::string what = "entry " + std::to_string(entry);
    if (!in.read(h.data(), kBlock, what)) {
      if (!any) throw Error(MV_ERR_CORRUPT_DATA, archive + ": empty file, not a tar archive");
      break;  // tolerated: no end-of-archive blocks
    }
    if (std::all_of(h.begin(), h.end(), [](char c) { return c == 0; })) break;
    bool ok = true;
    const uint64_t sum = number(h.data() + 148, 8, &ok);
    uint64_t computed = 0;
    for (size_t i = 0; i < kBlock; ++i) {
      computed += (i >= 148 && i < 156) ? uint64_t{' '} : static_cast<unsigned char>(h[i]);
    }
    if (!ok || sum != computed) {
      throw Error(MV_ERR_CORRUPT_DATA,
                  archive + ": " + what + ": bad tar header checksum (not a tar archive?)");
    }
    any = true;
    const uint64_t size = number(h.data() + 124, 12, &ok);
    const char type = h[156];
    std::string name = field(h.data(), 100);
    if (std::memcmp(h.data() + 257, "ustar", 5) == 0) {
      const std::string prefix = field(h.data() + 345, 155);
      if (!prefix.empty()) name = prefix + "/" + name;
    }
    if (!long_name.empty()) {
      name = long_name;
      long_name.clear();
    }
    total += size;
    if (!ok || total > kMaxTotal) {
      throw Error(MV_ERR_CORRUPT_DATA, archive + ": " + what + ": implausible entry size");
    }
    const uint64_t padded = (size + kBlock - 1) / kBlock * kBlock;
    const std::string entry_what = what + " ('" + name + "')";
    if (type == 'L' || type == 'x') {  // GNU long name / pax extended header for the next entry
      // Held in memory, so bounded: the declared size is not trusted before the data is read.
      if (size > kMaxMetadata) {
        throw Error(MV_ERR_CORRUPT_DATA,
                    archive + ": " + what + ": implausible long-name or pax header size");
      }
      data.resize(static_cast<size_t>(padded));
      if (padded > 0 && !in.read(data.data(), static_cast<size_t>(padded), entry_what)) {
        throw Error(MV_ERR_CORRUPT_DATA, archive + ": " + what + ": the archive is truncated");
      }
      if (type == 'L') {
        long_name = field(data.data(), static_cast<size_t>(size));
      } else if (std::string path = pax_path(std::string(data.data(), static_cast<size_t>(size)));
                 !path.empty()) {  // pax: only "path" matters here
        long_name = path;
      }
      continue;
    }
    if (type == 'g' || type == '5') {  // pax global header; folder
      copy_entry(in, nullptr, padded, size, data, archive, what, entry_what);
      if (type == '5') fs::create_directories(fs::path(out->root_) / safe_name(archive, name));
      continue;
    }
    if (type != '0' && type != '\0' && type != '7') {
      throw Error(MV_ERR_UNSUPPORTED_FORMAT,
                  archive + ": entry '" + name +
                      "' is a link or special file; a package archive holds regular files only");
    }
    const fs::path dest = fs::path(out->root_) / safe_name(archive, name);
    std::error_code ec;
    fs::create_directories(dest.parent_path(), ec);
    std::ofstream f(dest, std::ios::binary);
    if (!f) throw Error(MV_ERR_IO, archive + ": cannot extract '" + name + "'");
    copy_entry(in, &f, padded, size, data, archive, what, entry_what);
  }

  const fs::path root(out->root_);
  std::error_code ec;
  if (fs::is_regular_file(root / "manifest.json", ec)) {
    out->package_ = root.string();
  } else {
    std::vector<fs::path> found;
    for (const auto& e : fs::directory_iterator(root, ec)) {
      if (e.is_directory() && fs::is_regular_file(e.path() / "manifest.json")) {
        found.push_back(e.path());
      }
    }
    if (found.size() != 1) {
      throw Error(MV_ERR_MODEL, archive +
                                    ": the archive holds no manifest.json at its top level "
                                    "or in one folder");
    }
    out->package_ = found.front().string();
  }
  return out;
}

ExtractedPackage::~ExtractedPackage() {
  if (root_.empty()) return;
  std::error_code ec;
  fs::remove_all(root_, ec);  // best effort; never throws
}

}  // namespace medvision::model
