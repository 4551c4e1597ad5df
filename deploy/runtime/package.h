#pragma once
// .mxr packages: serialization of a Graph (schema/mxr.fbs) and loading with full validation.
// Loading runs the FlatBuffers verifier, then validate_graph(): a corrupt or hostile file gets a
// mixnas::Error, never a crash or an out-of-bounds read.
#include <cstddef>
#include <cstdint>
#include <string>

#include "deploy/runtime/graph.h"

namespace mixnas::rt {

// Schema version written by this build; the loader accepts exactly the versions it knows.
constexpr uint32_t kMxrSchemaVersion = 1;
// Packages larger than this are rejected before parsing (FlatBuffers' own limit is 2 GiB).
constexpr size_t kMxrMaxBytes = size_t{1} << 31;

// Validates `graph` and returns the package bytes.
std::string serialize_package(const Graph& graph);

// Serializes without validating: for tests and fuzz seeds that need malformed packages.
std::string serialize_package_unvalidated(const Graph& graph);

// Parses and validates a package. `origin` names it in error messages (a path or "<memory>").
Graph parse_package(const uint8_t* data, size_t size, const std::string& origin = "<memory>");

// Reads and parses a package file.
Graph load_package_file(const std::string& path);

}  // namespace mixnas::rt
