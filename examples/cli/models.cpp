// medvision models: list the model packages on the search path.

#include "models.hpp"

#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

#include "cli_util.hpp"
#include "medvision/medvision.hpp"

namespace mvcli {

using nlohmann::json;

void add_models_command(CLI::App& app, ModelsArgs& a) {
  auto* c = app.add_subcommand("models", "List the model packages on the search path");
  c->add_flag("--json", a.json, "JSON Lines");
  a.command = c;
}

int run_models(const ModelsArgs& a) {
  size_t needed = 0;
  medvision::check(mv_model_list(nullptr, 0, &needed));
  std::string buf(needed, '\0');
  medvision::check(mv_model_list(buf.data(), buf.size(), &needed));
  std::stringstream ss(buf.c_str());
  std::string dir;
  int rc = 0;
  while (std::getline(ss, dir)) {
    if (dir.empty()) continue;
    try {
      medvision::ModelOptions mo;
      mo.set_device("cpu").set_warmup(false).set_optimize(false);
      const auto m = medvision::Model::load(dir, mo);
      const auto labels = m.labels();
      if (a.json) {
        std::cout << json{{"name", m.name()},
                          {"version", m.version()},
                          {"path", dir},
                          {"task", medvision::to_string(m.task())},
                          {"labels", labels}}
                         .dump(-1, ' ', false, nlohmann::json::error_handler_t::replace)
                  << "\n";
      } else {
        std::string l;
        for (const auto& x : labels) l += (l.empty() ? "" : ", ") + x;
        std::printf("%-20s %-8s %-15s %s\n    %s\n", m.name().c_str(), m.version().c_str(),
                    medvision::to_string(m.task()), l.c_str(), dir.c_str());
      }
    } catch (const medvision::Exception& e) {
      std::fprintf(stderr, "medvision: %s: %s\n", e.status_name(), e.what());
      rc = exit_code(e.status());
    }
  }
  return rc;
}

}  // namespace mvcli
