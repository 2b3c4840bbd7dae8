// DICOM parsing: a file or a buffer to a DcmFileFormat. Values stay on disk until needed when
// reading a file; a buffer is handed to DCMTK as an anonymous in-memory file (memfd), and the
// deflated transfer syntax is inflated here, both so that a declared length is never allocated
// before the data is known to be there (issue 19).

#include <dcmtk/config/osconfig.h>  // must precede the other DCMTK headers
#include <dcmtk/dcmdata/dcdeftag.h>
#include <dcmtk/dcmdata/dcfilefo.h>
#include <dcmtk/dcmdata/dcistrmb.h>
#include <dcmtk/dcmdata/dcmetinf.h>

#include <sys/mman.h>
#include <unistd.h>

#include <zlib.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <iterator>

#include <fmt/format.h>

#include "common/error.hpp"
#include "io/dicom_codecs.hpp"
#include "io/dicom_dataset.hpp"
#include "io/dicom_reader.hpp"

namespace medvision::io::dicom {
namespace {

Error parse_error(const OFCondition& cond, const std::string& name) {
  if (cond == EC_InvalidFilename) return Error(MV_ERR_IO, name + ": cannot open file");
  if (cond == EC_StreamNotifyClient) {
    return Error(MV_ERR_CORRUPT_DATA, name + ": file is truncated (ends inside a data element)");
  }
  return Error(MV_ERR_CORRUPT_DATA,
               name + ": not a readable DICOM file (" + std::string(cond.text()) + ")");
}

struct FdCloser {
  int fd;
  ~FdCloser() {
    if (fd >= 0) ::close(fd);
  }
};

// An anonymous in-memory file holding `data` (Linux memfd; nothing touches the disk), or -1.
int memory_file(const uint8_t* data, size_t size) {
#ifdef __linux__
  const int fd = memfd_create("medvision-dicom", MFD_CLOEXEC);
  if (fd < 0) return -1;
  for (size_t done = 0; done < size;) {
    const ssize_t n = ::write(fd, data + done, size - done);
    if (n <= 0) {
      ::close(fd);
      return -1;
    }
    done += static_cast<size_t>(n);
  }
  return fd;
#else
  (void)data, (void)size;
  return -1;
#endif
}

std::string fd_path(int fd) { return fmt::format("/proc/self/fd/{}", fd); }

// Deflated Explicit VR Little Endian: DCMTK reads the data set through zlib, a stream it cannot
// skip in, so an element's declared length is allocated before DCMTK finds the data shorter (a
// mutated 26 KiB file made it allocate 1.3 GB; found by fuzz_load_dicom, issue 19). We inflate
// the data set ourselves (at most kMaxInflated bytes, as real output, never a declared size) and
// let DCMTK read it as a plain explicit little endian file, where long values are skipped and
// checked against the file size. The meta header, transfer syntax included, is kept as it was.
constexpr size_t kMaxInflated = size_t{1} << 30;

std::unique_ptr<DcmFileFormat> load_deflated(const std::string& path, DcmFileFormat& meta_only,
                                             const std::string& name) {
  std::ifstream in(path, std::ios::binary);
  const std::vector<uint8_t> raw((std::istreambuf_iterator<char>(in)),
                                 std::istreambuf_iterator<char>());
  const auto meta_length = static_cast<size_t>(
      meta_only.getMetaInfo()->getLength(EXS_LittleEndianExplicit, EET_ExplicitLength));
  size_t offset = 0;
  if (raw.size() >= 132 && std::memcmp(raw.data() + 128, "DICM", 4) == 0) {
    offset = 132 + meta_length;
  } else if (raw.size() >= 4 && std::memcmp(raw.data(), "DICM", 4) == 0) {
    offset = 4 + meta_length;
  } else {
    throw Error(MV_ERR_CORRUPT_DATA, name + ": deflated data set without a DICM prefix");
  }
  if (offset > raw.size()) {
    throw Error(MV_ERR_CORRUPT_DATA, name + ": file is truncated (ends inside the meta header)");
  }
  z_stream z{};
  if (inflateInit2(&z, -MAX_WBITS) != Z_OK) {
    throw Error(MV_ERR_OUT_OF_MEMORY, name + ": cannot start zlib");
  }
  std::vector<uint8_t> inflated;
  z.next_in = const_cast<Bytef*>(raw.data() + offset);
  z.avail_in = static_cast<uInt>(raw.size() - offset);
  int rc = Z_OK;
  while (rc == Z_OK) {
    if (inflated.size() >= kMaxInflated) {
      inflateEnd(&z);
      throw Error(
          MV_ERR_OUT_OF_MEMORY,
          fmt::format("{}: deflated data set inflates to more than {} bytes", name, kMaxInflated));
    }
    const size_t have = inflated.size();
    inflated.resize(std::min(kMaxInflated, std::max<size_t>(have * 2, 1 << 16)));
    z.next_out = inflated.data() + have;
    z.avail_out = static_cast<uInt>(inflated.size() - have);
    rc = inflate(&z, Z_NO_FLUSH);
    inflated.resize(inflated.size() - z.avail_out);
    if (rc == Z_BUF_ERROR && z.avail_in == 0) break;  // input ended without a final block
    if (rc == Z_BUF_ERROR) rc = Z_OK;
  }
  inflateEnd(&z);
  if (rc != Z_STREAM_END && rc != Z_BUF_ERROR) {
    throw Error(MV_ERR_CORRUPT_DATA,
                fmt::format("{}: deflated data set is corrupt (zlib error {})", name, rc));
  }
  FdCloser fd{memory_file(inflated.data(), inflated.size())};
  if (fd.fd < 0) return nullptr;
  auto dataset = std::make_unique<DcmDataset>();
  const OFCondition cond = dataset->loadFile(fd_path(fd.fd).c_str(), EXS_LittleEndianExplicit,
                                             EGL_noChange, DCM_MaxReadLength);
  if (cond.bad()) throw parse_error(cond, name);
  const OFCondition load = dataset->loadAllDataIntoMemory();
  if (load.bad()) throw parse_error(load, name);
  auto file = std::make_unique<DcmFileFormat>(dataset.get(), OFFalse);
  static_cast<void>(dataset.release());  // owned by `file` now (no deep copy)
  DcmMetaInfo* meta = file->getMetaInfo();
  meta->clear();
  DcmMetaInfo* source = meta_only.getMetaInfo();
  for (unsigned long i = 0; i < source->card(); ++i) {
    meta->insert(static_cast<DcmElement*>(source->getElement(i)->clone()), true);
  }
  return file;
}

// DCMTK's loadFile, or load_deflated for the deflated transfer syntax. `name` for messages.
std::unique_ptr<DcmFileFormat> load_path(const std::string& path, const std::string& name) {
  auto file = std::make_unique<DcmFileFormat>();
  DcmFileFormat meta_only;
  if (meta_only.loadFile(path.c_str(), EXS_Unknown, EGL_noChange, DCM_MaxReadLength, ERM_metaOnly)
          .good() &&
      get_string(*meta_only.getMetaInfo(), DCM_TransferSyntaxUID) == "1.2.840.10008.1.2.1.99") {
    if (auto inflated = load_deflated(path, meta_only, name)) return inflated;
  }
  // EXS_Unknown + autodetect: files without preamble or meta header parse too.
  const OFCondition cond =
      file->loadFile(path.c_str(), EXS_Unknown, EGL_noChange, DCM_MaxReadLength, ERM_autoDetect);
  if (cond.bad()) throw parse_error(cond, name);
  return file;
}

}  // namespace

std::unique_ptr<DcmFileFormat> parse_file(const std::string& path) {
  ensure_dcmtk_ready();
  return load_path(path, path);
}

namespace {

// DCMTK reading a DcmInputBufferStream allocates each element's declared length before it finds
// the data shorter: 4 KiB of pydicom's SC_rgb_jpeg.dcm made it allocate 1.3 GB (found by
// fuzz_load_dicom, issue 19). Reading a file, it skips long values, checks them against the file
// size, and loads them later. So bytes in memory are handed to DCMTK as a file: an anonymous
// memfd (Linux; nothing touches the disk). Null when that is not possible.
std::unique_ptr<DcmFileFormat> parse_memory_as_file(const uint8_t* data, size_t size,
                                                    const std::string& name) {
  FdCloser fd{memory_file(data, size)};
  if (fd.fd < 0 || ::access(fd_path(fd.fd).c_str(), R_OK) != 0) return nullptr;
  auto file = load_path(fd_path(fd.fd), name);
  // The memfd is closed on return: make sure every value is in memory now.
  const OFCondition load = file->loadAllDataIntoMemory();
  if (load.bad()) throw parse_error(load, name);
  return file;
}

}  // namespace

std::unique_ptr<DcmFileFormat> parse_memory(const uint8_t* data, size_t size,
                                            const std::string& name) {
  ensure_dcmtk_ready();
  if (auto parsed = parse_memory_as_file(data, size, name)) return parsed;
  auto file = std::make_unique<DcmFileFormat>();
  DcmInputBufferStream stream;
  stream.setBuffer(data, static_cast<offile_off_t>(size));
  stream.setEos();
  file->transferInit();
  const OFCondition cond = file->read(stream, EXS_Unknown, EGL_noChange, DCM_MaxReadLength);
  file->transferEnd();
  if (cond.bad()) throw parse_error(cond, name);
  // The stream does not outlive this call: make sure every value is in memory now.
  const OFCondition load = file->loadAllDataIntoMemory();
  if (load.bad()) throw parse_error(load, name);
  return file;
}

}  // namespace medvision::io::dicom
