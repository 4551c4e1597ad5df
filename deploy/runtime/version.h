#pragma once
// The runtime's identity beyond the project version: a hash of its sources (kernels, ops, format),
// so that measurements taken with one build of the kernels are not reused with another.

namespace mixnas::rt {

// 12 hex digits, the same for every build of the same sources (host and cross builds alike).
const char* runtime_signature();
// "<project version>+<signature>", e.g. "0.1.0+3fa2c1d09e7b": what latency tables record.
const char* runtime_version();

}  // namespace mixnas::rt
