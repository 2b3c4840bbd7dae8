// Reads a DICOM SR back with DCMTK's dcmsr (DSRDocument::read, the document's validity check and
// the tree's validity as a document tree of its IOD) and prints what an independent reader sees
// as one JSON object, for bindings/python/tests/test_dicom_sr.py:
//   {"read": true, "valid": true, "tree_valid": true, "template": "1500/DCMR",
//    "document_type": "Comprehensive 3D SR", "preliminary": "PRELIMINARY",
//    "completion": "PARTIAL", "verification": "UNVERIFIED", "title": "126000/DCM",
//    "groups": 3}
// Exit status 0 when the file could be read, 1 otherwise.

#include <dcmtk/config/osconfig.h>  // must precede the other DCMTK headers
#include <dcmtk/dcmdata/dcfilefo.h>
#include <dcmtk/dcmsr/dsrdoc.h>

#include <cstdio>
#include <string>

namespace {

std::string quoted(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: sr_check FILE\n");
    return 2;
  }
  DcmFileFormat file;
  DSRDocument doc;
  if (file.loadFile(argv[1]).bad() || doc.read(*file.getDataset()).bad()) {
    std::printf("{\"read\": false}\n");
    return 1;
  }
  DSRDocumentTree& tree = doc.getTree();
  OFString id, mapping;
  tree.getTemplateIdentification(id, mapping);
  // Measurement groups: CONTAINER items with concept (125007, DCM, "Measurement Group").
  int groups = 0;
  if (tree.gotoRoot() > 0) {
    do {
      const DSRCodedEntryValue& c = tree.getCurrentContentItem().getConceptName();
      if (c.getCodeValue() == "125007" && c.getCodingSchemeDesignator() == "DCM") ++groups;
    } while (tree.iterate() > 0);
  }
  tree.gotoRoot();
  const DSRCodedEntryValue& title = tree.getCurrentContentItem().getConceptName();
  std::printf(
      "{\"read\": true, \"valid\": %s, \"tree_valid\": %s, \"template\": %s, "
      "\"document_type\": %s, \"preliminary\": %s, \"completion\": %s, \"verification\": %s, "
      "\"title\": %s, \"groups\": %d}\n",
      doc.isValid() ? "true" : "false", tree.isValidDocumentTree() ? "true" : "false",
      quoted(std::string(id.c_str()) + "/" + mapping.c_str()).c_str(),
      quoted(DSRTypes::documentTypeToReadableName(doc.getDocumentType())).c_str(),
      quoted(DSRTypes::preliminaryFlagToEnumeratedValue(doc.getPreliminaryFlag())).c_str(),
      quoted(DSRTypes::completionFlagToEnumeratedValue(doc.getCompletionFlag())).c_str(),
      quoted(DSRTypes::verificationFlagToEnumeratedValue(doc.getVerificationFlag())).c_str(),
      quoted(std::string(title.getCodeValue().c_str()) + "/" +
             title.getCodingSchemeDesignator().c_str())
          .c_str(),
      groups);
  return 0;
}
