#include <catch2/catch.hpp>

#include "core/text.h"

using namespace mixnas;

TEST_CASE("edit distance known answers", "[core]") {
  CHECK(text::edit_distance("", "") == 0);
  CHECK(text::edit_distance("kitten", "sitting") == 3);
  CHECK(text::edit_distance("epochs", "epoch") == 1);
  CHECK(text::edit_distance("abc", "") == 3);
}

TEST_CASE("closest suggests near keys only", "[core]") {
  std::vector<std::string> keys{"train.epochs", "train.batch", "imgsz"};
  CHECK(text::closest("train.epoch", keys) == "train.epochs");
  CHECK(text::closest("imgsize", keys) == "imgsz");
  CHECK(text::closest("completely.different", keys).empty());
}

TEST_CASE("split, join and trim", "[core]") {
  CHECK(text::split("a.b.c", '.') == std::vector<std::string>{"a", "b", "c"});
  CHECK(text::split("", ',') == std::vector<std::string>{""});
  CHECK(text::join({"a", "b"}, ", ") == "a, b");
  CHECK(text::trim("  x y \n") == "x y");
  CHECK(text::starts_with("train.epochs", "train."));
  CHECK_FALSE(text::ends_with("a", "abc"));
}
