#include <catch2/catch.hpp>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "core/config.h"
#include "core/error.h"
#include "core/schemas.h"

using namespace mixnas;
using namespace mixnas::config;

namespace {
const std::string kDir = std::string(MIXNAS_TEST_DATA_DIR) + "/configs/";

std::string error_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}
}  // namespace

TEST_CASE("a valid config resolves values and defaults", "[config]") {
  Config c = Config::load(kDir + "good.yaml", train_schema());
  CHECK(c.get_int("train.epochs") == 12);
  CHECK(c.get_int("train.batch") == 8);
  CHECK(c.get_string("train.optimizer") == "SGD");
  CHECK(c.get_float("augment.fliplr") == Approx(0.25));
  CHECK(c.get_int("imgsz") == 160);
  CHECK(c.get_float("loss.box") == Approx(7.5));  // default
  CHECK(c.is_set("train.epochs"));
  CHECK_FALSE(c.is_set("loss.box"));
  CHECK(c.where("train.epochs").str() == kDir + "good.yaml:6:11");
}

TEST_CASE("base: includes another config that this one overrides", "[config]") {
  Config c = Config::load(kDir + "child.yaml", train_schema());
  CHECK(c.get_int("train.epochs") == 3);  // from child
  CHECK(c.get_int("train.batch") == 8);   // from base
  CHECK(c.where("train.epochs").file == kDir + "child.yaml");
  CHECK(c.where("train.batch").file == kDir + "good.yaml");
}

TEST_CASE("key=value overrides, with dotted paths", "[config]") {
  Config c = Config::load(kDir + "good.yaml", train_schema(),
                          {"train.epochs=3", "imgsz=128", "train.optimizer=AdamW"});
  CHECK(c.get_int("train.epochs") == 3);
  CHECK(c.get_int("imgsz") == 128);
  CHECK(c.get_string("train.optimizer") == "AdamW");
  CHECK(c.where("imgsz").str() == "command line (imgsz=128)");
}

TEST_CASE("a wrong type names file:line:column, key and expected type", "[config]") {
  std::string msg = error_of([] { Config::load(kDir + "bad_type.yaml", train_schema()); });
  CHECK(msg == kDir + "bad_type.yaml:4:11: 'train.epochs' expects an integer, got 'ten'");
}

TEST_CASE("an unknown key suggests the closest valid key", "[config]") {
  std::string msg = error_of([] { Config::load(kDir + "bad_unknown.yaml", train_schema()); });
  CHECK(msg == kDir +
                   "bad_unknown.yaml:4:3: unknown key 'train.epoch' in a train config; did you "
                   "mean 'train.epochs'?");
}

TEST_CASE("a YAML syntax error names file:line", "[config]") {
  std::string msg = error_of([] { Config::load(kDir + "bad_syntax.yaml", train_schema()); });
  CHECK_THAT(msg, Catch::StartsWith(kDir + "bad_syntax.yaml:5: YAML syntax error"));
}

TEST_CASE("a missing base names the including file, line and the path looked for", "[config]") {
  std::string msg = error_of([] { Config::load(kDir + "bad_base.yaml", train_schema()); });
  CHECK_THAT(msg, Catch::StartsWith(
                      kDir + "bad_base.yaml:1:7: base config 'does-not-exist.yaml' not found"));
}

TEST_CASE("a value outside the allowed choices suggests the right spelling", "[config]") {
  std::string msg = error_of([] { Config::load(kDir + "bad_choice.yaml", train_schema()); });
  CHECK(msg == kDir +
                   "bad_choice.yaml:4:14: 'train.optimizer' must be one of SGD, AdamW, got "
                   "'adamw'; did you mean 'AdamW'?");
}

TEST_CASE("cyclic bases are an error, not a hang", "[config]") {
  std::string msg = error_of([] { Config::load(kDir + "cycle_a.yaml", train_schema()); });
  CHECK(msg.find("cycle") != std::string::npos);
}

TEST_CASE("bad overrides are errors naming the override", "[config]") {
  CHECK(error_of([] { Config::load(kDir + "good.yaml", train_schema(), {"train.epochs=abc"}); }) ==
        "command line (train.epochs=abc): 'train.epochs' expects an integer, got 'abc'");
  CHECK(error_of([] { Config::load(kDir + "good.yaml", train_schema(), {"train.epohcs=3"}); }) ==
        "command line (train.epohcs=3): unknown key 'train.epohcs' in a train config; did you "
        "mean 'train.epochs'?");
  CHECK(error_of([] {
          Config::load(kDir + "good.yaml", train_schema(), {"epochs"});
        }).find("key=value") != std::string::npos);
  CHECK(error_of([] {
          Config::load(kDir + "good.yaml", train_schema(), {"train=3"});
        }).find("is a section") != std::string::npos);
}

TEST_CASE("required keys must be given", "[config]") {
  std::string msg = error_of([] { Config::load_string("imgsz: 64", "x.yaml", train_schema()); });
  CHECK(msg.find("required key 'model'") != std::string::npos);
}

TEST_CASE("args.yaml round trip gives the same values", "[config]") {
  Config c = Config::load(kDir + "good.yaml", train_schema(), {"train.epochs=7"});
  Config back = Config::load_string(c.to_yaml(), "args.yaml", train_schema());
  for (const auto& f : train_schema().fields()) {
    INFO(f.key);
    YAML::Emitter a, b;
    a << c.raw(f.key);
    b << back.raw(f.key);
    CHECK(std::string(a.c_str()) == std::string(b.c_str()));
  }
}

TEST_CASE("docs/configs.md documents every key of every schema", "[config]") {
  std::ifstream in(std::string(MIXNAS_SOURCE_DIR) + "/docs/configs.md");
  REQUIRE(in);
  std::stringstream doc;
  doc << in.rdbuf();
  for (const Schema* s : all_schemas()) {
    std::ostringstream table;
    s->write_markdown(table);
    INFO("schema " << s->kind() << ": regenerate with `mixnas info --config-docs`");
    CHECK(doc.str().find(table.str()) != std::string::npos);
  }
}

// YAML's line breaks are LF, CR LF and CR alike (a file saved on Windows or classic Mac OS, or
// ending in a lone CR): the values are the same, and args.yaml gives them back (fuzz_config found
// a lone CR kept inside a plain scalar at the end of a file).
TEST_CASE("CR LF and lone CR line breaks load as LF does and round-trip", "[config]") {
  const std::string lf = "data: d.yaml\nmodel: m.yaml\ntrain:\n  epochs: 5\n  optimizer: SGD";
  std::string crlf, cr;
  for (char c : lf) {
    crlf += c == '\n' ? std::string("\r\n") : std::string(1, c);
    cr += c == '\n' ? '\r' : c;
  }
  for (const std::string& text : {crlf + "\r\n", cr, cr + "\r"}) {
    const std::string path =
        (std::filesystem::temp_directory_path() / "mixnas_test_config_crlf.yaml").string();
    std::ofstream(path, std::ios::binary | std::ios::trunc) << text;
    const Config c = Config::load(path, train_schema(), {"name=x\r"});
    std::remove(path.c_str());
    CHECK(c.get_string("train.optimizer") == "SGD");
    CHECK(c.get_int("train.epochs") == 5);
    CHECK(c.get_string("model") == "m.yaml");
    CHECK(c.get_string("name") == "x");
    CHECK(c.where("train.optimizer").line == 5);
    const std::string args = c.to_yaml();
    CHECK(Config::load_string(args, "args.yaml", train_schema()).to_yaml() == args);
  }
}
