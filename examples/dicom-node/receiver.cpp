// The Storage SCP (see receiver.hpp), on DCMTK's DcmSCP.

#include "receiver.hpp"

#include <dcmtk/config/osconfig.h>
#include <dcmtk/dcmdata/dcdeftag.h>
#include <dcmtk/dcmdata/dcfilefo.h>
#include <dcmtk/dcmdata/dcobject.h>
#include <dcmtk/dcmdata/dcuid.h>
#include <dcmtk/dcmdata/dcxfer.h>
#include <dcmtk/dcmnet/diutil.h>
#include <dcmtk/dcmnet/scp.h>

#include <algorithm>
#include <atomic>
#include <stdexcept>

#include "dicom_header.hpp"
#include "files.hpp"

namespace mvnode {

namespace fs = std::filesystem;

namespace {

// DIMSE status codes of the C-STORE response (PS3.4 B.2.3).
constexpr Uint16 kStoreOk = 0x0000;
constexpr Uint16 kStoreOutOfResources = 0xA700;
constexpr Uint16 kStoreCannotUnderstand = 0xC000;

OFList<OFString> transfer_syntaxes() {
  // Every encoding the library decodes, uncompressed first (the PACS then transcodes when it
  // can; compressed images are stored as received).
  const char* const uids[] = {
      UID_LittleEndianExplicitTransferSyntax, UID_LittleEndianImplicitTransferSyntax,
      UID_BigEndianExplicitTransferSyntax,    UID_DeflatedExplicitVRLittleEndianTransferSyntax,
      UID_JPEGProcess14SV1TransferSyntax,     UID_JPEGProcess14TransferSyntax,
      UID_JPEGProcess1TransferSyntax,         UID_JPEGProcess2_4TransferSyntax,
      UID_JPEGLSLosslessTransferSyntax,       UID_JPEGLSLossyTransferSyntax,
      UID_JPEG2000LosslessOnlyTransferSyntax, UID_JPEG2000TransferSyntax,
      UID_RLELosslessTransferSyntax,
  };
  OFList<OFString> out;
  for (const char* u : uids) out.push_back(u);
  return out;
}

}  // namespace

class Receiver::Scp : public DcmSCP {
 public:
  Scp(const Config& config, StudyQueue& queue, Log& log, const std::atomic<bool>& stop)
      : config_(config), queue_(queue), log_(log), stop_(stop) {
    setAETitle(config.ae_title.c_str());
    setPort(config.port);
    setHostLookupEnabled(OFFalse);
    // Non-blocking: the accept loop wakes every second to see whether the node is stopping.
    setConnectionBlockingMode(DUL_NOBLOCK);
    setConnectionTimeout(1);
    setACSETimeout(30);
    setDIMSETimeout(60);
    const OFList<OFString> xfers = transfer_syntaxes();
    OFList<OFString> echo_xfers;
    echo_xfers.push_back(UID_LittleEndianExplicitTransferSyntax);
    echo_xfers.push_back(UID_LittleEndianImplicitTransferSyntax);
    check(addPresentationContext(UID_VerificationSOPClass, echo_xfers), "Verification");
    // DcmSCP takes at most 128 presentation contexts: DCMTK's list of the 120 common storage
    // SOP classes (every image class the library reads is in it).
    for (int i = 0; i < numberOfDcmLongSCUStorageSOPClassUIDs; ++i) {
      check(addPresentationContext(dcmLongSCUStorageSOPClassUIDs[i], xfers),
            dcmLongSCUStorageSOPClassUIDs[i]);
    }
  }

 protected:
  OFBool checkCallingAETitleAccepted(const OFString& calling) override {
    if (config_.accept_from.empty()) return OFTrue;
    const bool ok = std::find(config_.accept_from.begin(), config_.accept_from.end(),
                              std::string(calling.c_str())) != config_.accept_from.end();
    if (!ok) {
      log_.warn(std::string("association from calling AE '") + calling.c_str() +
                "' refused: not in accept_from");
    }
    return ok ? OFTrue : OFFalse;
  }

  OFBool checkCalledAETitleAccepted(const OFString& called) override {
    const bool ok = std::string(called.c_str()) == config_.ae_title;
    if (!ok) {
      log_.warn(std::string("association for called AE '") + called.c_str() +
                "' refused: this node is '" + config_.ae_title + "'");
    }
    return ok ? OFTrue : OFFalse;
  }

  OFBool stopAfterConnectionTimeout() override { return stop_.load() ? OFTrue : OFFalse; }
  OFBool stopAfterCurrentAssociation() override { return stop_.load() ? OFTrue : OFFalse; }

  OFCondition handleIncomingCommand(T_DIMSE_Message* msg,
                                    const DcmPresentationContextInfo& info) override {
    if (msg->CommandField != DIMSE_C_STORE_RQ) return DcmSCP::handleIncomingCommand(msg, info);
    T_DIMSE_C_StoreRQ& req = msg->msg.CStoreRQ;
    DcmDataset* raw = nullptr;
    const OFCondition c = receiveSTORERequest(req, info.presentationContextID, raw);
    std::unique_ptr<DcmDataset> dataset(raw);
    if (c.bad()) {
      log_.warn(std::string("C-STORE receive failed: ") + c.text());
      return c;
    }
    const Uint16 status = dataset ? store(req, std::move(dataset)) : kStoreCannotUnderstand;
    return sendSTOREResponse(info.presentationContextID, req, status);
  }

 private:
  void check(const OFCondition& c, const char* what) {
    if (c.bad())
      throw std::runtime_error(std::string("presentation context ") + what + ": " + c.text());
  }

  Uint16 store(const T_DIMSE_C_StoreRQ& req, std::unique_ptr<DcmDataset> dataset) {
    const Header h = read_header(*dataset);
    const std::string sop = h.sop_uid.empty() ? std::string(req.AffectedSOPInstanceUID) : h.sop_uid;
    if (h.study_uid.empty() || sop.empty() || h.series_uid.empty()) {
      log_.warn("C-STORE of " + sop + " refused: no Study, Series or SOP Instance UID");
      return kStoreCannotUnderstand;
    }
    // The node's own results coming back (e.g. the whole study sent again): acknowledged and
    // dropped, never analysed.
    if (h.manufacturer == "medvision" || queue_.is_own_output(sop)) {
      log_.info("study " + h.study_uid + ": instance " + sop +
                " is a medvision result; not analysed");
      return kStoreOk;
    }
    const fs::path tmp = config_.data_dir / "incoming" /
                         (std::to_string(counter_.fetch_add(1)) + "-" + study_key(sop) + ".dcm");
    const E_TransferSyntax xfer = dataset->getOriginalXfer();
    DcmFileFormat ff(dataset.release(), OFFalse);  // takes the dataset over
    const OFCondition c =
        ff.saveFile(tmp.c_str(), xfer == EXS_Unknown ? EXS_LittleEndianExplicit : xfer);
    if (c.bad()) {
      log_.error("cannot write " + tmp.string() + ": " + c.text());
      std::error_code ec;
      fs::remove(tmp, ec);
      return kStoreOutOfResources;
    }
    fsync_path(tmp);
    Instance inst;
    inst.sop_uid = sop;
    inst.sop_class = h.sop_class;
    inst.series_uid = h.series_uid;
    inst.modality = h.modality;
    inst.body_part = h.body_part;
    inst.series_description = h.series_description;
    inst.instance_number = h.instance_number;
    try {
      const auto added = queue_.add(inst, h.study_uid, tmp);
      log_.info("study " + h.study_uid + ": received " + h.modality + " instance " + sop +
                (added == StudyQueue::Added::kKnown ? " (again)" : ""));
    } catch (const std::exception& e) {
      log_.error("study " + h.study_uid + ": cannot queue instance " + sop + ": " + e.what());
      return kStoreOutOfResources;
    }
    return kStoreOk;
  }

  const Config& config_;
  StudyQueue& queue_;
  Log& log_;
  const std::atomic<bool>& stop_;
  std::atomic<uint64_t> counter_{0};
};

Receiver::Receiver(const Config& config, StudyQueue& queue, Log& log)
    : scp_(std::make_unique<Scp>(config, queue, log, stop_)) {
  const OFCondition c = scp_->openListenPort();
  if (c.bad()) {
    throw std::runtime_error("cannot listen on port " + std::to_string(config.port) + ": " +
                             c.text());
  }
  log.info("listening as AE '" + config.ae_title + "' on port " + std::to_string(config.port));
  thread_ = std::thread([this, &log] {
    const OFCondition r = scp_->acceptAssociations();
    if (r.bad() && !stop_.load()) log.error(std::string("receiver stopped: ") + r.text());
  });
}

Receiver::~Receiver() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
}

}  // namespace mvnode
