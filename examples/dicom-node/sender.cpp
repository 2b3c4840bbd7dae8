// The Storage SCU (see sender.hpp), on DCMTK's DcmSCU.

#include "sender.hpp"

#include <dcmtk/config/osconfig.h>
#include <dcmtk/dcmdata/dcfilefo.h>
#include <dcmtk/dcmdata/dcuid.h>
#include <dcmtk/dcmdata/dcxfer.h>
#include <dcmtk/dcmnet/scu.h>

#include <cstdio>
#include <map>
#include <set>

#include "dicom_header.hpp"

namespace mvnode {

namespace fs = std::filesystem;

namespace {

// Releases (or, failing that, aborts) an association when the scope ends.
class Association {
 public:
  explicit Association(DcmSCU& scu) : scu_(scu) {}
  Association(const Association&) = delete;
  Association& operator=(const Association&) = delete;
  ~Association() {
    if (scu_.isConnected() && scu_.releaseAssociation().bad()) (void)scu_.abortAssociation();
  }

 private:
  DcmSCU& scu_;
};

std::string hex_status(Uint16 s) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "0x%04X", static_cast<unsigned>(s));
  return buf;
}

}  // namespace

Sender::Sender(const Config& config, StudyQueue& queue, Log& log)
    : config_(config), queue_(queue), log_(log), thread_([this] { run(); }) {}

Sender::~Sender() {
  stop_ = true;
  queue_.wake_all();
  if (thread_.joinable()) thread_.join();
}

void Sender::run() {
  while (!stop_) {
    const auto work = queue_.claim_send();
    if (!work) {
      queue_.wait(0.5);
      continue;
    }
    std::string error;
    const auto sent = send(*work, error);
    if (!sent.empty()) {
      queue_.send_succeeded(work->key, sent);
      log_.info("study " + work->study_uid + ": sent " + std::to_string(sent.size()) +
                " result(s) to " + config_.destination.ae_title);
    }
    if (!error.empty()) queue_.send_failed(work->key, error);
  }
}

std::vector<fs::path> Sender::send(const SendWork& work, std::string& error) {
  const Destination& d = config_.destination;
  DcmSCU scu;
  scu.setAETitle(config_.ae_title.c_str());
  scu.setPeerAETitle(d.ae_title.c_str());
  scu.setPeerHostName(d.host.c_str());
  scu.setPeerPort(d.port);
  scu.setConnectionTimeout(10);
  scu.setACSETimeout(30);
  scu.setDIMSETimeout(60);
  scu.setDatasetConversionMode(OFTrue);

  // One context per SOP class and file transfer syntax, plus one uncompressed fallback.
  std::map<std::string, std::set<std::string>> contexts;
  std::vector<std::pair<fs::path, std::string>> files;  // path, SOP class
  for (const auto& f : work.files) {
    DcmFileFormat ff;
    if (ff.loadFile(f.c_str()).bad()) {
      error = f.string() + ": result file unreadable";
      return {};
    }
    const Header h = read_header(*ff.getDataset());
    const DcmXfer xfer(ff.getDataset()->getOriginalXfer());
    contexts[h.sop_class].insert(xfer.getXferID());
    files.emplace_back(f, h.sop_class);
  }
  for (const auto& [sop_class, xfers] : contexts) {
    for (const auto& x : xfers) {
      OFList<OFString> one;
      one.push_back(x.c_str());
      (void)scu.addPresentationContext(sop_class.c_str(), one);
    }
    OFList<OFString> plain;
    plain.push_back(UID_LittleEndianExplicitTransferSyntax);
    plain.push_back(UID_LittleEndianImplicitTransferSyntax);
    (void)scu.addPresentationContext(sop_class.c_str(), plain);
  }
  OFCondition c = scu.initNetwork();
  if (c.bad()) {
    error = std::string("network initialisation failed: ") + c.text();
    return {};
  }
  c = scu.negotiateAssociation();
  if (c.bad()) {
    error = "association with " + d.ae_title + " at " + d.host + ":" + std::to_string(d.port) +
            " failed: " + c.text();
    return {};
  }
  Association association(scu);
  std::vector<fs::path> sent;
  for (const auto& [path, sop_class] : files) {
    const T_ASC_PresentationContextID pc = scu.findAnyPresentationContextID(sop_class.c_str(), "");
    if (pc == 0) {
      error = d.ae_title + " accepts no presentation context for SOP class " + sop_class;
      continue;
    }
    Uint16 status = 0;
    c = scu.sendSTORERequest(pc, path.c_str(), nullptr, status);
    if (c.bad()) {
      error = std::string("C-STORE failed: ") + c.text();
      break;  // the association is likely gone
    }
    // 0x0000 success; 0xB000, 0xB007, 0xB006: warnings (stored, with remarks).
    if (status == 0x0000 || (status & 0xF000) == 0xB000) {
      sent.push_back(path);
    } else if (error.empty()) {
      error = d.ae_title + " refused " + path.filename().string() + " with status " +
              hex_status(status);
    }
  }
  return sent;
}

}  // namespace mvnode
